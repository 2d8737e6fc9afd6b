"""The training loop end to end on tiny configs: every config trains and evaluates,
resume reproduces an uninterrupted run, NaN and SIGTERM stop it safely, bad keys fail.
"""

import json
import os
import signal
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.evaluate import evaluator
from jpose.train import checkpointing
from jpose.train import config_check
from jpose.train import loop
from jpose.train import trainers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _final_state(config, workdir):
  exp = loop.build_experiment(config)
  state, data_state = checkpointing.Checkpointer(workdir, 3).restore(exp.abstract_state)
  return state, data_state


@pytest.mark.parametrize("name", ["martinez", "deepbase1", "deepbase2", "gan"])
def test_every_config_trains_and_evaluates(name, tiny_config, tmp_path):
  results = loop.train_and_evaluate(tiny_config(name), str(tmp_path))
  with open(tmp_path / "eval_results.json") as f:
    saved = json.load(f)
  assert saved["step"] == 6 and saved == json.loads(json.dumps(results))
  for protocol in ("protocol1", "protocol2"):
    p = saved[protocol]
    assert set(p) >= {"action_wise_mean", "frame_wise_mean", "per_action"}
    assert all(np.isfinite(v) and v > 0 for v in p["per_action"].values())
    assert p["action_wise_mean"] == pytest.approx(np.mean(list(p["per_action"].values())))
  assert saved["protocol2"]["frame_wise_mean"] <= saved["protocol1"]["frame_wise_mean"]
  assert (tmp_path / "eval_results.md").exists()
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tensorboard"))


def test_resume_equals_uninterrupted_run(tiny_config, tmp_path):
  full = tmp_path / "full"
  loop.train_and_evaluate(tiny_config("martinez", num_steps=6), str(full),
                          evaluate_at_end=False)
  split = tmp_path / "split"
  loop.train_and_evaluate(tiny_config("martinez", num_steps=3), str(split),
                          evaluate_at_end=False)
  loop.train_and_evaluate(tiny_config("martinez", num_steps=6), str(split),
                          evaluate_at_end=False)
  a, data_a = _final_state(tiny_config("martinez"), str(full))
  b, data_b = _final_state(tiny_config("martinez"), str(split))
  assert int(a.step) == int(b.step) == 6 and data_a == data_b
  chex.assert_trees_all_equal(a.params, b.params)
  chex.assert_trees_all_equal(a.opt_state, b.opt_state)
  chex.assert_trees_all_equal(a.batch_stats, b.batch_stats)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_checkpoint(tiny_config, tmp_path,
                                                                     monkeypatch):
  real_compile = loop.compile_train_step

  def poisoned(exp):
    step_fn = real_compile(exp)

    def run(state, batch, resident):
      state, metrics = step_fn(state, batch, resident)
      if int(state.step) >= 5:  # the 5th step's loss is NaN
        metrics = {**metrics, "loss": metrics["loss"] * np.nan}
      return state, metrics
    return run

  monkeypatch.setattr(loop, "compile_train_step", poisoned)
  config = tiny_config("martinez", num_steps=6, checkpoint_every=3, log_every=100)
  with pytest.raises(loop.NonFiniteLossError, match=r"nan at step 5.*step 3"):
    loop.train_and_evaluate(config, str(tmp_path))
  manager = checkpointing.Checkpointer(str(tmp_path), 3)
  assert manager.manager.all_steps() == [3]
  state, _ = _final_state(config, str(tmp_path))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_non_finite_gradient_never_checkpoints_nan_parameters(tiny_config, tmp_path,
                                                              monkeypatch):
  # The 6th step's gradient is NaN: its loss (from the parameters before the update) is
  # finite, the parameters it writes are not, and step 6 is a checkpoint step.
  real_update = trainers.SupervisedLifter._update

  def poisoned_update(self, state, name, grads, params):
    poison = jnp.where(state.step == 5, jnp.nan, 1.0)
    return real_update(self, state, name, jax.tree.map(lambda g: g * poison, grads), params)

  monkeypatch.setattr(trainers.SupervisedLifter, "_update", poisoned_update)
  config = tiny_config("martinez", num_steps=6, checkpoint_every=3, log_every=100)
  with pytest.raises(loop.NonFiniteLossError,
                     match=r"state's params\.lifter\..* became non-finite .* at step 6.*step 3"):
    loop.train_and_evaluate(config, str(tmp_path))
  assert checkpointing.Checkpointer(str(tmp_path), 3).manager.all_steps() == [3]
  state, _ = _final_state(config, str(tmp_path))
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def _signalling_eval_step(monkeypatch, at_batch: int) -> dict:
  """Makes the loop's evaluations send SIGTERM to this process while their batch number
  `at_batch` is computed; returns counts of the batches run before and after it."""
  real_make = evaluator.make_eval_step
  calls = {"before": 0, "after": 0}

  def make(metrics_fn, mesh):  # the one eval step every evaluator compiles.
    step_fn = real_make(metrics_fn, mesh)

    def step(*args, **kwargs):
      key = "after" if calls["before"] >= at_batch else "before"
      calls[key] += 1
      if calls["before"] == at_batch and key == "before":
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, in the middle of the evaluation
      return step_fn(*args, **kwargs)
    return step
  monkeypatch.setattr(evaluator, "make_eval_step", make)
  return calls


def test_sigterm_during_an_evaluation_saves_before_stopping(tiny_config, tmp_path,
                                                            monkeypatch):
  calls = _signalling_eval_step(monkeypatch, at_batch=2)
  config = tiny_config("martinez", num_steps=6, checkpoint_every=100, eval_every=2)
  config.eval.batch_size = 4  # the evaluation has hundreds of batches: 2 of them run.
  with pytest.raises(loop.Preempted, match=r"SIGTERM at step 2 \(the evaluation in progress "
                                           r"was dropped\); checkpoint saved"):
    loop.train_and_evaluate(config, str(tmp_path))
  assert calls == {"before": 2, "after": 0}  # stopped at the next batch
  assert checkpointing.Checkpointer(str(tmp_path), 3).manager.all_steps() == [2]


def test_sigterm_during_the_final_evaluation_says_so(tiny_config, tmp_path, monkeypatch):
  calls = _signalling_eval_step(monkeypatch, at_batch=1)
  config = tiny_config("martinez", num_steps=3)
  config.eval.batch_size = 4
  with pytest.raises(loop.Preempted, match=r"during the final evaluation; the trained state "
                                           r"\(step 3\) is saved"):
    loop.train_and_evaluate(config, str(tmp_path))
  assert calls == {"before": 1, "after": 0}
  assert not (tmp_path / "eval_results.json").exists()
  assert checkpointing.Checkpointer(str(tmp_path), 3).manager.all_steps() == [3]


def test_eval_mode_leaves_a_training_runs_files_alone(tiny_config, tmp_path):
  config = tiny_config("martinez", num_steps=3)
  loop.train_and_evaluate(config, str(tmp_path), evaluate_at_end=False)
  # A training run's next checkpoint, still being written.
  in_flight = tmp_path / "checkpoints" / "6.orbax-checkpoint-tmp-1700000000"
  in_flight.mkdir()
  (in_flight / "partial").write_text("x")
  loop.evaluate_checkpoint(config, str(tmp_path))
  assert (in_flight / "partial").exists()
  with pytest.raises(PermissionError, match="read-only"):
    checkpointing.Checkpointer(str(tmp_path), 3, read_only=True).save(None, {})


def test_sigterm_saves_and_resume_finishes_the_run(tiny_config, tmp_path, monkeypatch):
  real_compile = loop.compile_train_step

  def preempted(exp):
    step_fn = real_compile(exp)

    def run(state, batch, resident):
      state, metrics = step_fn(state, batch, resident)
      if int(state.step) == 4:
        os.kill(os.getpid(), signal.SIGTERM)
      return state, metrics
    return run

  monkeypatch.setattr(loop, "compile_train_step", preempted)
  config = tiny_config("martinez", num_steps=6, checkpoint_every=100)
  with pytest.raises(loop.Preempted, match="stopped by SIGTERM at step 4; checkpoint saved"):
    loop.train_and_evaluate(config, str(tmp_path / "run"))
  assert checkpointing.Checkpointer(str(tmp_path / "run"), 3).manager.all_steps() == [4]
  monkeypatch.setattr(loop, "compile_train_step", real_compile)
  loop.train_and_evaluate(config, str(tmp_path / "run"), evaluate_at_end=False)
  loop.train_and_evaluate(config, str(tmp_path / "ref"), evaluate_at_end=False)
  a, _ = _final_state(config, str(tmp_path / "run"))
  b, _ = _final_state(config, str(tmp_path / "ref"))
  chex.assert_trees_all_equal(a.params, b.params)


def test_unknown_config_key_is_named():
  config = configs.load("martinez:tiny")
  config.unlock()
  config.train.batch_sise = 3
  with pytest.raises(KeyError, match=r"config.train.batch_sise: unknown field; did you mean "
                                     r"config.train.batch_size\?"):
    config_check.validate(config)
  config = configs.load("martinez:tiny")
  config.data.input_2d = "hourglass"
  with pytest.raises(ValueError, match=r"config.data.input_2d: 'hourglass'"):
    config_check.validate(config)


def test_cli_rejects_unknown_override_without_traceback(tmp_path):
  out = subprocess.run([sys.executable, "-m", "jpose.main", "--config",
                        "configs/martinez.py:tiny", "--workdir", str(tmp_path),
                        "--config.train.batch_sise=3"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
  assert out.returncode != 0
  assert "batch_sise" in out.stderr and "batch_size" in out.stderr
  assert "Traceback" not in out.stderr


def test_cli_trains_then_eval_mode_reads_the_checkpoint(tfds_dir, tmp_path):
  env = {**os.environ, "TFDS_DATA_DIR": tfds_dir}
  cmd = [sys.executable, "-m", "jpose.main", "--config", "configs/deepbase2.py:tiny",
         "--workdir", str(tmp_path)]
  subprocess.run(cmd + ["--mode=train"], cwd=REPO, env=env, check=True, timeout=300,
                 capture_output=True)
  assert not (tmp_path / "eval_results.json").exists()
  out = subprocess.run(cmd + ["--mode=eval"], cwd=REPO, env=env, check=True, timeout=300,
                       capture_output=True, text=True)
  assert "protocol1" in out.stdout
  with open(tmp_path / "eval_results.json") as f:
    assert json.load(f)["step"] == 6


def test_eight_devices_match_one(tfds_dir):
  def run(devices):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, os.path.join(REPO, "tests/train/_run_tiny.py"),
                          "gan:tiny", tfds_dir, "4"], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])
  one, eight = run(1), run(8)
  assert one["devices"] == 1 and eight["devices"] == 8
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
