"""Each jpose command answers a user's mistake with one line and exit status 2 (issue 27.3)."""

import os
import subprocess
import sys

import pytest

from jpose import cli

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", *args], cwd=_REPO, env=env, capture_output=True,
                        text=True, timeout=600)


def _one_line(done, command, *expected):
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2, done.stderr[-3000:]
  assert "Traceback" not in done.stderr, done.stderr[-3000:]
  assert lines and lines[-1].startswith(f"{command}: "), done.stderr[-3000:]
  for text in expected:
    assert text in lines[-1], lines[-1]
  return lines[-1]


def test_main_workdir_is_a_file(tmp_path):
  workdir = tmp_path / "a_file"
  workdir.write_text("kept")
  done = _run("jpose.main", "--config", "configs/martinez.py:tiny", "--workdir", str(workdir))
  _one_line(done, "jpose.main", f"--workdir {workdir}", "is a file, not a folder")
  assert workdir.read_text() == "kept"  # nothing written is lost


def test_main_config_does_not_exist(tmp_path):
  done = _run("jpose.main", "--config", "configs/does_not_exist.py", "--workdir",
              str(tmp_path / "w"))
  line = _one_line(done, "jpose.main", "--config configs/does_not_exist.py",
                   "No such file", "give an existing config file")
  assert "config_config" not in line


def test_main_misspelled_nested_config_key_has_no_escaped_quote(tmp_path):
  done = _run("jpose.main", "--config", "configs/martinez.py:tiny", "--workdir",
              str(tmp_path / "w"), "--config.train.batch_sze=3")
  line = _one_line(done, "jpose.main", "batch_sze", 'Did you mean "batch_size"')
  assert "\\'" not in line and "\\n" not in line


def test_main_missing_workdir_flag():
  done = _run("jpose.main", "--config", "configs/martinez.py:tiny")
  _one_line(done, "jpose.main", "--workdir: missing")


def test_prepare_manual_dir_does_not_exist(tmp_path):
  done = _run("jpose.prepare", "--dataset", "h36m", "--manual_dir", str(tmp_path / "nope"),
              "--data_dir", str(tmp_path / "data"))
  _one_line(done, "jpose.prepare", str(tmp_path / "nope"), "not a folder")


def test_prepare_unknown_dataset_and_bad_flag(tmp_path):
  _one_line(_run("jpose.prepare", "--dataset", "nope", "--data_dir", str(tmp_path)),
            "jpose.prepare", "unknown dataset 'nope'")
  _one_line(_run("jpose.prepare", "--dataset", "h36m", "--bogus=1"), "jpose.prepare",
            "Unknown command line flag 'bogus'")


@pytest.mark.parametrize("command", ["jpose.infer", "jpose.export"])
def test_workdir_without_a_run(command, tmp_path):
  extra = ["--keypoints", str(tmp_path / "kp.json")] if command == "jpose.infer" else []
  done = _run(command, "--workdir", str(tmp_path), "--out", str(tmp_path / "out"), *extra)
  _one_line(done, command, str(tmp_path))


@pytest.mark.parametrize("module", ["jpose.keypoint_robustness",
                                    "jpose.evaluate.keypoint_robustness"])  # its first name
def test_keypoint_robustness_missing_workdir(module):
  _one_line(_run(module), "jpose.keypoint_robustness", "--workdir: missing")


@pytest.mark.parametrize("command", ["jpose.infer", "jpose.export", "jpose.predict"])
def test_workdir_that_does_not_exist(command, tmp_path):
  missing = tmp_path / "no_run_here"
  extra = {"jpose.infer": ["--out", str(tmp_path / "out"), "--keypoints",
                           "colab/example_keypoints.json"],
           "jpose.export": ["--out", str(tmp_path / "out")], "jpose.predict": []}[command]
  done = _run(command, "--workdir", str(missing), *extra)
  _one_line(done, command, f"--workdir {missing}: no such folder")


def test_fit_missing_flags():
  _one_line(_run("jpose.fit"), "jpose.fit", "--h36m_dir and --out are required")


def test_message_unwraps_nested_key_error_reprs():
  inner = KeyError("'batch_sze'\nDid you mean \"batch_size\"?")
  assert cli.message(KeyError(repr(str(inner)))) == "'batch_sze' Did you mean \"batch_size\"?"
  assert cli.message(KeyError("config.x: unknown field")) == "config.x: unknown field"


def test_bugs_keep_their_traceback():
  assert cli.user_mistake(RuntimeError("boom")) is None
  assert cli.user_mistake(ValueError("shapes (3,) and (4,) differ")) is None
  assert cli.user_mistake(FileNotFoundError(2, "No such file", "/x/y")) == (
      "[Errno 2] No such file: '/x/y'; check the path")


def test_bench_unknown_config_and_missing_config():
  _one_line(_run("jpose.bench", "--config", "nope"), "jpose.bench", "--config nope",
            "no config named 'nope'")
  _one_line(_run("jpose.bench", "--model", "train_step"), "jpose.bench", "needs --config")
  _one_line(_run("jpose.bench", "--no_such_flag"), "jpose.bench", "bad flag")
