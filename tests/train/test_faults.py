"""Faults a preemptible machine meets, reproduced for real on tiny configs: an optimizer
state that overflows, a diverging loss, damaged checkpoints, a disk that fills, SIGTERM
from the scheduler, and an evaluation racing a live run's max_to_keep (issue 28).
"""

import glob
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jpose.train import checkpointing
from jpose.train import loop

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def trained(tiny_config, tmp_path_factory):
  """A martinez:tiny workdir trained 6 steps with checkpoints at steps 3 and 6."""
  workdir = tmp_path_factory.mktemp("trained")
  loop.train_and_evaluate(tiny_config("martinez", num_steps=6, checkpoint_every=3),
                          str(workdir), evaluate_at_end=False)
  return workdir


@pytest.fixture(scope="module")
def abstract_state(tiny_config):
  return loop.build_experiment(tiny_config("martinez"), need_train=False).abstract_state


def _copy(trained, tmp_path):
  shutil.copytree(trained, tmp_path / "run")
  return tmp_path / "run"


def _largest_data_file(step_folder):
  return max(glob.glob(str(step_folder / "state" / "ocdbt.process_0" / "d" / "*")),
             key=os.path.getsize)


def _damage(step_folder, how):
  if how == "truncated":
    path = _largest_data_file(step_folder)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  elif how == "zeroed":
    path = _largest_data_file(step_folder)
    with open(path, "r+b") as f:
      f.write(bytes(os.path.getsize(path)))
  elif how == "no_metadata":
    os.remove(step_folder / "state" / "_METADATA")
  elif how == "empty":
    shutil.rmtree(step_folder)
    step_folder.mkdir()


def _all_finite(tree):
  return all(np.isfinite(x).all() for x in jax.tree.leaves(tree)
             if np.issubdtype(np.asarray(x).dtype, np.inexact))


def test_optimizer_state_overflow_stops_and_names_the_leaf(tiny_config, tmp_path):
  # lr 1e6: the loss grows to ~1e15 but stays finite, and so do the parameters, while
  # Adam's second moment overflows to inf (the run checkpointed it and exited 0).
  config = tiny_config("martinez", num_steps=60, checkpoint_every=10, learning_rate=1e6)
  with pytest.raises(loop.NonFiniteLossError) as error:
    loop.train_and_evaluate(config, str(tmp_path))
  message = str(error.value)
  found = re.fullmatch(r"the train state's (opt_state\.lifter\.0\.nu\.\S+) became non-finite "
                       r"\(the loss, (\S+), was finite: .*\) at step (\d+); stopping: the "
                       r"last good checkpoint \(step (\d+)\) is kept in .*", message)
  assert found, message
  step, kept = int(found[3]), int(found[4])
  assert np.isfinite(float(found[2]))
  assert kept == (step - 1) // 10 * 10 and 10 <= kept < 60
  ckpt = checkpointing.Checkpointer(str(tmp_path), 3)
  assert ckpt.manager.all_steps()[-1] == kept
  exp = loop.build_experiment(config, need_train=False)
  state, _ = ckpt.restore(exp.abstract_state)
  assert int(state.step) == kept and _all_finite(state)  # the optimizer state included
  # The named leaf really is inf one step later: the state the loop now refused to save.
  ckpt.close()


def test_divergence_guard_stops_a_diverging_loss(tiny_config, tmp_path, monkeypatch):
  real_compile = loop.compile_train_step

  def diverging(exp):
    step_fn = real_compile(exp)

    def run(state, batch, resident):
      state, metrics = step_fn(state, batch, resident)
      if int(state.step) >= 25:  # the loss jumps 1000x at step 25 and stays up
        metrics = {**metrics, "loss": metrics["loss"] * 1000.0}
      return state, metrics
    return run

  monkeypatch.setattr(loop, "compile_train_step", diverging)
  config = tiny_config("martinez", num_steps=30, checkpoint_every=10, divergence_factor=10.0)
  with pytest.raises(loop.NonFiniteLossError,
                     match=r"train loss \S+ diverged \(over train.divergence_factor=10 x the "
                           r"median \S+ of the last 24 steps\) at step 25; stopping: the last "
                           r"good checkpoint \(step 20\)"):
    loop.train_and_evaluate(config, str(tmp_path / "on"))
  assert checkpointing.Checkpointer(str(tmp_path / "on"), 3).manager.all_steps() == [10, 20]
  config.train.divergence_factor = 0.0  # the default: off
  loop.train_and_evaluate(config, str(tmp_path / "off"), evaluate_at_end=False)
  assert checkpointing.Checkpointer(str(tmp_path / "off"), 3).manager.all_steps()[-1] == 30


CAUSES = {"truncated": "OUT_OF_RANGE", "zeroed": "ZSTD_decompressStream() failed",
          "no_metadata": "state/_METADATA missing",
          "empty": "state/_METADATA, data/metadata missing"}


@pytest.mark.parametrize("how", sorted(CAUSES))
def test_damaged_latest_checkpoint_falls_back_with_one_warning(how, trained, abstract_state,
                                                               tmp_path, caplog):
  run = _copy(trained, tmp_path)
  _damage(run / "checkpoints" / "6", how)
  with caplog.at_level(logging.WARNING):
    state, _ = checkpointing.Checkpointer(str(run), 3, read_only=True).restore(abstract_state)
  assert int(state.step) == 3
  warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
              and "checkpoints/6" in r.getMessage()]
  assert len(warnings) == 1 and "\n" not in warnings[0], warnings
  assert f"checkpoint {run}/checkpoints/6 is unreadable (" in warnings[0]
  assert CAUSES[how] in warnings[0] and "trying an older step" in warnings[0]
  assert (run / "checkpoints" / "6").is_dir()  # never deleted


def test_training_resumes_past_a_damaged_checkpoint_and_sets_it_aside(trained, tiny_config,
                                                                      abstract_state, tmp_path):
  run = _copy(trained, tmp_path)
  _damage(run / "checkpoints" / "6", "truncated")
  loop.train_and_evaluate(tiny_config("martinez", num_steps=6, checkpoint_every=3), str(run),
                          evaluate_at_end=False)
  aside = glob.glob(str(run / checkpointing.DAMAGED / "6-*"))
  assert len(aside) == 1 and os.path.isfile(os.path.join(aside[0], "_CHECKPOINT_METADATA"))
  ckpt = checkpointing.Checkpointer(str(run), 3)
  assert ckpt.manager.all_steps() == [3, 6]
  resumed, _ = ckpt.restore(abstract_state)
  reference, _ = checkpointing.Checkpointer(str(trained), 3, read_only=True).restore(
      abstract_state)
  chex.assert_trees_all_equal(resumed.params, reference.params)  # step 6 rewritten exactly
  chex.assert_trees_all_equal(resumed.opt_state, reference.opt_state)


def test_no_readable_checkpoint_names_the_folder_in_one_line(trained, abstract_state, tmp_path):
  run = _copy(trained, tmp_path)
  _damage(run / "checkpoints" / "6", "empty")
  _damage(run / "checkpoints" / "3", "zeroed")
  with pytest.raises(checkpointing.CheckpointError) as error:
    checkpointing.Checkpointer(str(run), 3).restore(abstract_state)
  message = str(error.value)
  assert "\n" not in message
  assert message.startswith(f"no readable checkpoint in {run}/checkpoints (step 6: ")
  assert "; step 3: " in message and "ZSTD" in message
  assert sorted(os.listdir(run / "checkpoints")) == ["3", "6"]  # nothing moved or deleted


def test_failed_save_stops_the_run_with_one_line(tfds_dir, tmp_path):
  # Files may not grow past 20 kB from step 15 on (RLIMIT_FSIZE): the checkpoint at 20
  # fails in orbax's background thread, as on a full disk.
  workdir = tmp_path / "run"
  out = subprocess.run(
      [sys.executable, os.path.join(REPO, "tests/train/_run_full_disk.py"), tfds_dir,
       str(workdir), "15", "20000", "--config.train.num_steps=40",
       "--config.train.checkpoint_every=10"],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 1, out.stderr[-3000:]
  ours = [line for line in out.stderr.splitlines() if line.startswith("jpose.main:")]
  assert len(ours) == 1, out.stderr[-3000:]
  assert ours[0].startswith(f"jpose.main: saving checkpoint {workdir}/checkpoints/20 failed (")
  assert "File too large" in ours[0]
  assert ours[0].endswith("its partial folder is left for the next start to remove; the last "
                          "good checkpoint (step 10) is kept")
  left = sorted(os.listdir(workdir / "checkpoints"))  # no 30: the run stopped
  assert left[0] == "10" and len(left) == 2 and left[1].startswith("20.orbax-checkpoint-tmp")
  assert checkpointing.Checkpointer(str(workdir), 3).manager.all_steps() == [10]
  for _ in range(100):  # the next start removes it (in the background, before any save)
    if os.listdir(workdir / "checkpoints") == ["10"]:
      break
    time.sleep(0.1)
  assert os.listdir(workdir / "checkpoints") == ["10"]


def test_preempted_cli_run_exits_143_after_saving(tfds_dir, tmp_path):
  workdir = tmp_path / "run"
  proc = subprocess.Popen(
      [sys.executable, "-m", "jpose.main", "--config", "configs/martinez.py:tiny",
       "--workdir", str(workdir), f"--config.data.data_dir={tfds_dir}", "--mode=train",
       "--config.train.num_steps=1000000", "--config.train.checkpoint_every=50"],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not glob.glob(str(workdir / "checkpoints" / "[0-9]*")) and time.time() < deadline:
    time.sleep(0.2)
  time.sleep(0.5)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=60)
  assert proc.returncode == loop.PREEMPTED_EXIT_STATUS == 143, stderr[-3000:]
  ours = [line for line in stderr.splitlines() if line.startswith("jpose.main:")]
  assert len(ours) == 1, stderr[-3000:]
  step = int(re.fullmatch(r"jpose.main: stopped by SIGTERM at step (\d+); checkpoint saved "
                          r"in .*; rerun the same command to resume", ours[0])[1])
  assert checkpointing.Checkpointer(str(workdir), 3).manager.all_steps()[-1] == step > 50


def test_eval_mode_retries_when_training_removes_the_step_it_reads(trained, tiny_config,
                                                                   tmp_path, monkeypatch,
                                                                   caplog):
  run = _copy(trained, tmp_path)
  real_restore = ocp.CheckpointManager.restore
  removed = []

  def restore_racing_max_to_keep(self, step, *args, **kwargs):
    if not removed:  # the live run's max_to_keep deletes the step as it is being read
      shutil.rmtree(run / "checkpoints" / str(step))
      removed.append(step)
    return real_restore(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "restore", restore_racing_max_to_keep)
  with caplog.at_level(logging.WARNING):
    results = loop.evaluate_checkpoint(tiny_config("martinez"), str(run))
  assert removed == [6] and results["step"] == 3
  assert any("step 6 in" in r.getMessage() and "was removed while being read" in r.getMessage()
             for r in caplog.records)
  assert not any("unreadable" in r.getMessage() for r in caplog.records)


def test_eval_mode_writes_to_an_output_folder(trained, tiny_config, tmp_path):
  before = {p: os.path.getmtime(p) for p in glob.glob(f"{trained}/**", recursive=True)}
  out = tmp_path / "out"
  results = loop.evaluate_checkpoint(tiny_config("martinez"), str(trained), output_dir=str(out))
  assert {p: os.path.getmtime(p) for p in glob.glob(f"{trained}/**", recursive=True)} == before
  assert (out / "eval_results.json").exists() and (out / "poses.png").exists()
  assert os.listdir(out / "tensorboard") and results["step"] == 6
