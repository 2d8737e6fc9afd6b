"""jpose.compile_cache: the commands' persistent compilation cache."""

import os
import subprocess
import sys

from jpose import compile_cache

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A fresh process compiles a program with the cache at CACHE_DIR, then prints how many
# cache files there are; run twice, the second run must find the first one's entries
# and add none.
_PROGRAM = """
import os, sys
import jax, jax.numpy as jnp
from jpose import compile_cache
path = compile_cache.enable(min_compile_time_s=0.0)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
f(jnp.ones((64, 64))).block_until_ready()
print(path, len(os.listdir(path)) if path else -1)
"""


def _run(env):
  out = subprocess.run([sys.executable, "-c", _PROGRAM], env=env, cwd=REPO,
                       capture_output=True, text=True, check=True, timeout=300)
  path, count = out.stdout.split()[-2:]
  return path, int(count)


def test_a_second_process_reuses_the_first_ones_programs(tmp_path):
  env = dict(os.environ, JPOSE_COMPILATION_CACHE=str(tmp_path / "xla"))
  path, first = _run(env)
  assert path == str(tmp_path / "xla") and first >= 1
  assert _run(env) == (path, first)  # loaded from the cache, nothing new written


def test_off_turns_it_off_and_the_default_is_under_the_home_cache(monkeypatch):
  monkeypatch.setenv(compile_cache.ENV, "off")
  assert compile_cache.cache_dir() is None and compile_cache.enable() is None
  monkeypatch.delenv(compile_cache.ENV)
  assert compile_cache.cache_dir() == os.path.expanduser("~/.cache/jpose/xla")


def test_an_unwritable_folder_turns_the_cache_off_with_one_line(tmp_path, capsys):
  blocker = tmp_path / "file"
  blocker.write_text("")
  assert compile_cache.enable(str(blocker / "xla")) is None
  line = capsys.readouterr().out.strip()
  assert line.startswith("jpose: compilation cache off: cannot create") and str(blocker) in line


def test_jpose_main_fills_the_cache(tfds_dir, tmp_path):
  # tcn243's tiny train step takes 3-4 s to compile here, over the 1 s threshold.
  env = dict(os.environ, JPOSE_COMPILATION_CACHE=str(tmp_path / "xla"))
  subprocess.run([sys.executable, "-m", "jpose.main", "--config", "configs/tcn243.py:tiny",
                  "--workdir", str(tmp_path / "run"), f"--config.data.data_dir={tfds_dir}",
                  "--config.train.num_steps=2", "--config.train.log_every=2",
                  "--config.train.checkpoint_every=2", "--mode=train"],
                 env=env, cwd=REPO, capture_output=True, text=True, check=True, timeout=600)
  assert any(name.endswith("-cache") for name in os.listdir(tmp_path / "xla"))
