"""`train_and_evaluate(config, workdir)`: the one training loop every config runs.

records -> grain pipeline -> sharded batch -> jitted train_step -> metric writers, with
orbax checkpoints (resumed automatically, past unreadable steps), a save and the
`Preempted` exception on SIGTERM (which interrupts an evaluation between batches), and a
stop naming the step (and leaf) on a non-finite loss or state, a diverging loss or a failed
save, which leaves the last good checkpoint in place.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import signal
import time
from typing import Any, Callable

from absl import logging
from clu import parameter_overview
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

import configs
from configs import common
from jpose.data import pipeline
from jpose.data import rendered_body
from jpose.data import resident
from jpose.evaluate import evaluator
from jpose.evaluate import hmr as hmr_evaluation
from jpose.train import checkpointing
from jpose.train import config_check
from jpose.train import hmr
from jpose.train import protocol
from jpose import sharding
from jpose.train import registry
from jpose.train import writers


CONFIG_FILE = "config.json"  # the run's config, beside its checkpoints.


class NonFiniteLossError(FloatingPointError):
  """The train loss or any leaf of the train state became NaN or infinite, or the loss
  diverged (train.divergence_factor); the message names the step (and the leaf)."""


PREEMPTED_EXIT_STATUS = 143  # 128 + SIGTERM, as a shell reports a process it terminated.


class Preempted(Exception):
  """SIGTERM stopped the run after its state was saved; the message says where.
  `python -m jpose.main` exits with PREEMPTED_EXIT_STATUS so that a scheduler restarts it."""


class _EvaluationInterrupted(Exception):
  """SIGTERM arrived during an evaluation, which is dropped."""


@dataclasses.dataclass
class Experiment:
  """What a run needs besides the loop: data, trainer, mesh and compiled steps."""

  config: ml_collections.ConfigDict
  train_data: pipeline.SequenceSet | None  # None: not training, or a trainer that
  eval_data: pipeline.SequenceSet | None  # reads no Human3.6M sequences (HMR).
  stats: pipeline.NormStats
  trainer: protocol.Trainer
  mesh: object
  state_sharding: object
  abstract_state: object
  resident: object  # device-resident training data (() for host-fed trainers)

  def init_state(self):
    rng = jax.random.key(self.config.seed)
    return jax.jit(self.trainer.init, out_shardings=self.state_sharding)(rng)


def build_experiment(config: ml_collections.ConfigDict, need_train: bool = True) -> Experiment:
  config_check.validate(config)
  sharding.check_batch_size(config.train.batch_size)
  sharding.check_batch_size(config.eval.batch_size, "eval.batch_size")
  if registry.trainer_class(config).reads_sequences:
    train_data = pipeline.load_config_split(config, "train")
    stats = pipeline.compute_norm_stats(train_data, config.data.keypoints, config.data.frame_2d)
    eval_data = pipeline.load_config_split(config, config.eval.split)
    trainer = registry.build(config, stats, train_data.num_frames)
  else:  # its data comes from elsewhere (the HMR trainer renders bodies from a library).
    train_data, eval_data, stats = None, None, pipeline.placeholder_norm_stats()
    trainer = registry.build(config, stats, 0)
  mesh = sharding.make_mesh()
  resident = sharding.replicate(mesh, trainer.resident_data(train_data)) if need_train else ()
  abstract_state = jax.eval_shape(trainer.init, jax.random.key(config.seed))
  state_sharding = jax.tree.map(lambda _: sharding.replicated(mesh), abstract_state)
  abstract_state = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract_state,
      state_sharding)
  return Experiment(config, train_data if need_train else None, eval_data, stats, trainer,
                    mesh, state_sharding, abstract_state, resident)


def _is_float(x) -> bool:
  return jnp.issubdtype(x.dtype, jnp.inexact)


def _finite_leaves(tree) -> jax.Array:
  """(n,) bool: whether each float leaf of `tree` is finite, in jax.tree.leaves order."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if _is_float(x)]
  return jnp.stack(leaves) if leaves else jnp.ones((0,), bool)


def float_leaf_names(tree) -> list[str]:
  """The paths of `tree`'s float leaves ('opt_state.lifter.0.nu.Dense_0.bias'), in the
  order of _finite_leaves."""
  def name(path):
    return ".".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))))
                    for k in path)
  return [name(path) for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
          if _is_float(x)]


def multi_step(train_step, steps: int):
  """k = `steps` train steps as one function of k stacked batches (leading axis), by
  lax.scan; metrics come back stacked, (k,) each. k = 1 is the plain step, stacked.

  Each step also reports `state_finite`: whether each float leaf of its updated state
  (parameters, optimizer state, batch statistics) is finite, (k, leaves). A step's loss
  comes from the parameters before its update, so a finite loss does not vouch for the
  state that the loop might checkpoint; and Adam's second moment can overflow to inf while
  the parameters and the loss stay finite.
  """
  def checked_step(state, batch, resident):
    state, metrics = train_step(state, batch, resident)
    return state, {**metrics, "state_finite": _finite_leaves(state)}

  def run(state, batches, resident):
    if steps == 1:
      state, metrics = checked_step(state, jax.tree.map(lambda b: b[0], batches), resident)
      return state, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(lambda s, b: checked_step(s, b, resident), state, batches)
  return run


def compile_train_step(exp: Experiment):
  """The jitted dispatch of train.steps_per_dispatch steps: (state, stacked batches,
  resident) -> (state, stacked metrics); the state's buffers are donated."""
  batch_sh = sharding.stacked_batch_sharding(exp.mesh)
  resident_sh = jax.tree.map(lambda _: sharding.replicated(exp.mesh), exp.resident)
  return jax.jit(multi_step(exp.trainer.train_step, exp.config.train.steps_per_dispatch),
                 in_shardings=(exp.state_sharding, {k: batch_sh for k in exp.trainer.batch_keys},
                               resident_sh),
                 out_shardings=(exp.state_sharding, sharding.replicated(exp.mesh)),
                 donate_argnums=0)


def next_batches(iterator, keys, steps: int) -> dict[str, np.ndarray]:
  """The next `steps` local batches of `keys`, stacked on a leading axis."""
  batches = [next(iterator) for _ in range(steps)]
  return {k: np.stack([b[k] for b in batches]) for k in keys}


def _flatten(tree: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in tree.items():
    out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
  return out


def _log_parameter_overview(state) -> None:
  if jax.process_index() == 0:
    for name, params in state.params.items():
      print(f"Parameters of '{name}':")
      print(parameter_overview.get_parameter_overview(params, include_stats=False))


class _Preemption:
  """Turns SIGTERM (TPU VM preemption) into a flag the loop checks every dispatch.

  `agreed()` is the flag every process sees: on several processes it is true once any
  of them got the signal, so all of them enter orbax's collective save together (a host
  that saved alone would wait for the others forever).
  """

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread (e.g. a notebook worker): no handler.
      self._previous = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    logging.warning("SIGTERM received: saving a checkpoint and stopping.")
    self.requested = True

  def agreed(self) -> bool:
    if jax.process_count() == 1:
      return self.requested
    flags = multihost_utils.process_allgather(np.asarray(self.requested))
    return bool(np.any(flags))

  def interruptible(self, eval_step):
    """`eval_step` that first raises _EvaluationInterrupted once SIGTERM has come: an
    evaluation takes minutes, longer than a scheduler's grace period (~30 s)."""
    def step(*args, **kwargs):
      if self.agreed():  # every process runs the same batches, so all stop at the same one.
        raise _EvaluationInterrupted()
      return eval_step(*args, **kwargs)
    return step

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _pose_labels(config: ml_collections.ConfigDict) -> dict:
  return {"dataset": config.data.name, "split": config.eval.split,
          "input_2d": config.data.input_2d}


def _frame_evaluator(trainer, data: pipeline.SequenceSet | None, mesh
                     ) -> evaluator.FrameEvaluator:
  """Frame-wise models (lifters, VAEs, integral on rendered test frames) on the eval split.
  The flip test mirrors 2D input, except for models that mirror their own crops."""
  config = trainer.config
  predict = trainer.predict
  if config.eval.flip_test and not getattr(trainer, "flips_images", False):
    predict = resident.flip_averaged(predict)
  return evaluator.FrameEvaluator(
      predict, trainer.predict_keys, data, config.eval.batch_size, mesh,
      images_fn=getattr(trainer, "predict_images", None),
      latent_fn=getattr(trainer, "latent_means", None), **_pose_labels(config))


def _image_evaluator(trainer, data: pipeline.SequenceSet | None, mesh
                     ) -> evaluator.ImageEvaluator:
  """An image model on the recorded crops of config.eval.images."""
  del data  # the crops are records, not sequences.
  config = trainer.config
  return evaluator.ImageEvaluator(
      trainer.predict_records, trainer.record_keys, trainer.eval_source,
      config.eval.batch_size, mesh, trainer.size, input_2d=config.data.input_2d,
      data_dir=config.data.data_dir or None,
      crops_fn=functools.partial(trainer.predict_crops, flip_test=config.eval.flip_test),
      to_camera_fn=trainer.crop_to_camera)


def _sequence_evaluator(trainer, data: pipeline.SequenceSet | None, mesh
                        ) -> evaluator.SequenceEvaluator:
  """A TCN over whole sequences of the eval split."""
  config = trainer.config
  return evaluator.SequenceEvaluator(
      trainer.predict_sequences, trainer.field, config.model.causal, config.eval.chunk_frames,
      data, config.eval.batch_size, mesh, **_pose_labels(config))


def _body_evaluator(trainer, data: pipeline.SequenceSet | None, mesh
                    ) -> hmr_evaluation.HmrEvaluator:
  """The HMR regressor on held-out rendered bodies and recorded crops (config.eval.images)."""
  del data  # bodies are rendered from the pose library's held-out rows.
  config = trainer.config

  def render_rows(model, poses, rows):
    return hmr.with_distance(rendered_body.render_rows(
        model, poses, rows, hmr_evaluation.EVAL_SEED, trainer.render_config))
  return hmr_evaluation.HmrEvaluator(
      trainer.predict_bodies, trainer.keypoints_2d, trainer.mesh_reprojection, render_rows,
      lambda images: hmr.resize_crops(images, trainer.size), hmr.RECORD_KEYS,
      trainer.held_out_poses, trainer.body,
      [(s, hmr.uses_lsp_joints(s.name)) for s in trainer.eval_sources], trainer.size,
      config.eval.batch_size, mesh, data_dir=config.data.data_dir or None)


# The one registry of evaluators: a trainer's `evaluator_name` -> a factory of
# (trainer, eval split or None, mesh) that builds its evaluator from the trainer's predict
# functions (`protocol.EVALUATOR_NEEDS` lists which) and the data. The evaluator never sees
# the trainer; `evaluate(state, workdir, writer, frame_stride, eval_step, final)` returns
# its results.
EVALUATORS: dict[str, Callable[..., Any]] = {
    "frames": _frame_evaluator,
    "images": _image_evaluator,
    "sequences": _sequence_evaluator,
    "bodies": _body_evaluator,
}


def build_evaluator(exp: Experiment):
  """The evaluator the experiment's trainer names, on its eval split."""
  name = exp.trainer.evaluator_name
  if name not in EVALUATORS:
    raise KeyError(f"trainer '{exp.config.train.trainer}': unknown evaluator '{name}'; "
                   f"known: {sorted(EVALUATORS)}")
  return EVALUATORS[name](exp.trainer, exp.eval_data, exp.mesh)


def run_evaluation(exp: Experiment, state, workdir: str, writer, frame_stride: int,
                   eval_step=None, final: bool = True, evaluation=None) -> dict:
  """Evaluates `state` with the trainer's evaluator (`evaluation`, built once by the
  caller, or built here): logs, prints and, with `final`, writes results and figures."""
  evaluation = evaluation or build_evaluator(exp)
  return evaluation.evaluate(state, workdir, writer, frame_stride, eval_step, final=final)


# The progress bar shows the latest loss and samples/s at least this often, in steps.
BAR_EVERY = 20


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       evaluate_at_end: bool = True) -> dict | None:
  """Trains config.train.num_steps steps (resuming from workdir) and evaluates."""
  sharding.initialize_distributed(config)
  exp = build_experiment(config)
  os.makedirs(workdir, exist_ok=True)
  if jax.process_index() == 0:  # what jpose.infer and jpose.export rebuild the model from.
    with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
      f.write(config.to_json(indent=2))
  writer = writers.create_default_writer(workdir)
  writer.write_hparams(_flatten(config.to_dict()))
  ckpt = checkpointing.Checkpointer(workdir, config.train.max_to_keep)
  local_batch = sharding.per_process_batch(config.train.batch_size)
  dataset = exp.trainer.train_dataset(exp.train_data, exp.stats, local_batch, config.seed)
  iterator = pipeline.make_iterator(dataset, config.data.prefetch)
  if ckpt.latest_step() is not None:
    state, data_state = ckpt.restore(exp.abstract_state)
    iterator.set_state(data_state)
    logging.info("Resumed from step %d in %s", int(state.step), ckpt.directory)
    print(f"Resuming from checkpoint step {int(state.step)} in {ckpt.directory}")
  else:
    state = exp.init_state()
  _log_parameter_overview(state)
  train_step = compile_train_step(exp)
  evaluation = build_evaluator(exp)  # its step compiles once, for every evaluation.
  start = int(jax.device_get(state.step))
  num_steps = config.train.num_steps
  keys = exp.trainer.batch_keys

  k = config.train.steps_per_dispatch
  if start % k:
    raise ValueError(f"config.train.steps_per_dispatch={k}: the checkpoint in "
                     f"{ckpt.directory} is at step {start}, which is not a multiple of it")

  pending = None  # (metrics, last step) of the previous dispatch, checked one dispatch late.
  sums, count = None, 0
  bar = tqdm.tqdm(total=num_steps, initial=start, desc="train", unit="step",
                  disable=jax.process_index() > 0, dynamic_ncols=True)
  t_log, steps_since_log = time.time(), 0
  t_bar, bar_step = time.time(), start  # the bar's latest loss, between log_every steps

  leaf_names = float_leaf_names(exp.abstract_state)
  recent_losses = collections.deque(maxlen=100)  # the divergence guard's window.
  checked_through = start

  def check(step_metrics, last_step):
    """Raises if a step of the dispatch ending at last_step had a non-finite loss, left a
    non-finite leaf anywhere in the state, or (train.divergence_factor) a diverging loss.
    Called before every save; each dispatch is judged once."""
    nonlocal checked_through
    if last_step <= checked_through:
      return
    losses = np.asarray(step_metrics["loss"])
    leaves_finite = np.asarray(step_metrics["state_finite"]).reshape(losses.shape[0], -1)
    factor = config.train.divergence_factor
    for i, loss in enumerate(losses):
      step = last_step - losses.shape[0] + 1 + i
      what = None
      if not np.isfinite(loss):
        what = f"train loss is {loss}"
      elif not leaves_finite[i].all():
        leaf = leaf_names[int(np.flatnonzero(~leaves_finite[i])[0])]
        what = (f"the train state's {leaf} became non-finite (the loss, {loss:.6g}, was "
                "finite: an overflowing gradient or optimizer moment?)")
      elif factor and len(recent_losses) >= 20:
        median = float(np.median(recent_losses))
        if median > 0 and loss > factor * median:
          what = (f"train loss {loss:.6g} diverged (over train.divergence_factor={factor:g} "
                  f"x the median {median:.6g} of the last {len(recent_losses)} steps)")
      if what is not None:
        latest = ckpt.latest_step()
        where = (f"the last good checkpoint (step {latest}) is kept in {ckpt.directory}"
                 if latest is not None else "no checkpoint had been written yet")
        raise NonFiniteLossError(f"{what} at step {step}; stopping: {where}")
      recent_losses.append(float(loss))
    checked_through = last_step

  with _Preemption() as preemption:
    try:
      for step in range(start + k, num_steps + 1, k):  # `step`: the dispatch's last step.
        batches = sharding.to_global(exp.mesh, next_batches(iterator, keys, k), stacked=True)
        state, metrics = train_step(state, batches, exp.resident)
        if pending is not None:
          check(*pending)
        pending = (metrics, step)
        summed = {name: jnp.sum(m, axis=0) for name, m in metrics.items()
                  if name != "state_finite"}
        sums = summed if sums is None else jax.tree.map(jnp.add, sums, summed)
        count += k
        steps_since_log += k
        bar.update(k)
        if recent_losses and step - bar_step >= BAR_EVERY:
          # The previous dispatch's loss, already read back by check(): no extra device sync.
          now = time.time()
          rate = (step - bar_step) * config.train.batch_size / max(now - t_bar, 1e-9)
          bar.set_postfix(loss=f"{recent_losses[-1]:.4f}", samples_s=f"{rate:.0f}")
          t_bar, bar_step = now, step
        if step % config.train.log_every == 0 or step == num_steps:
          check(*pending)
          scalars = {f"train/{name}": float(v) / count for name, v in sums.items()}
          elapsed = time.time() - t_log
          scalars["train/steps_per_s"] = steps_since_log / elapsed
          scalars["train/samples_per_s"] = steps_since_log * config.train.batch_size / elapsed
          writer.write_scalars(step, scalars)
          bar.set_postfix(loss=f"{scalars['train/loss']:.4f}",
                          samples_s=f"{scalars['train/samples_per_s']:.0f}")
          sums, count, t_log, steps_since_log = None, 0, time.time(), 0
        preempted = preemption.agreed()
        saved = False
        if step % config.train.checkpoint_every == 0 or step == num_steps or preempted:
          check(*pending)  # never write a state that is not finite.
          ckpt.save(state, iterator.get_state())
          saved = True
        dropped = ""
        if config.train.eval_every and step % config.train.eval_every == 0 and step < num_steps:
          try:
            run_evaluation(exp, state, workdir, writer, config.eval.frame_stride,
                           preemption.interruptible(evaluation.eval_step), final=False,
                           evaluation=evaluation)
          except _EvaluationInterrupted:
            dropped = " (the evaluation in progress was dropped)"
          preempted = preemption.agreed()
        if preempted:
          if not saved:
            check(*pending)
            ckpt.save(state, iterator.get_state())
          ckpt.wait()
          raise Preempted(f"stopped by SIGTERM at step {step}{dropped}; checkpoint saved in "
                          f"{ckpt.directory}; rerun the same command to resume")
        ckpt.check_saved()  # a save that failed in orbax's background thread stops the run.
      if pending is not None:
        check(*pending)
    finally:
      bar.close()
      ckpt.close()
      writer.flush()
    if not evaluate_at_end:
      return None
    try:
      results = run_evaluation(exp, state, workdir, writer, config.eval.final_frame_stride,
                               eval_step=preemption.interruptible(evaluation.eval_step),
                               evaluation=evaluation)
    except _EvaluationInterrupted:
      raise Preempted(f"stopped by SIGTERM during the final evaluation; the trained state "
                      f"(step {int(jax.device_get(state.step))}) is saved in {ckpt.directory}; "
                      "evaluate it with --mode=eval") from None
  writer.flush()
  return results


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        output_dir: str | None = None) -> dict:
  """--mode=eval: evaluates the newest readable checkpoint in workdir without training.

  Results, figures and TensorBoard events go to `output_dir` (default: workdir), so that a
  run in a read-only workdir (another person's) can be evaluated.
  """
  exp = build_experiment(config, need_train=False)
  # Read-only: a run may still be training in this workdir, its next save in flight.
  ckpt = checkpointing.Checkpointer(workdir, config.train.max_to_keep, read_only=True)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f"--mode=eval: no checkpoint in {ckpt.directory}; train first")
  state, _ = ckpt.restore(exp.abstract_state)
  ckpt.close()
  output_dir = output_dir or workdir
  os.makedirs(output_dir, exist_ok=True)
  writer = writers.create_default_writer(output_dir)
  results = run_evaluation(exp, state, output_dir, writer, config.eval.final_frame_stride)
  writer.flush()
  return results


def _merge(config: ml_collections.ConfigDict, saved: dict) -> None:
  for key, value in saved.items():
    if isinstance(value, dict) and isinstance(config.get(key), ml_collections.ConfigDict):
      _merge(config[key], value)
    else:
      config[key] = value


def load_trained(workdir: str, config: ml_collections.ConfigDict | str | None = None):
  """A trained workdir's (config, trainer, state), with no dataset: the latest
  checkpoint, opened read-only, with the normalisation statistics stored in it.

  The config is `config` (or the config file[:variant] it names), or else the workdir's
  config.json (written by every run).
  """
  if not os.path.isdir(workdir):
    raise FileNotFoundError(f"--workdir {workdir}: no such folder; give the --workdir of a "
                            "trained run")
  if isinstance(config, str):
    config = configs.load(config)
  if config is None:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: no config beside the checkpoints (runs before jpose "
                              "0.3 wrote none); pass the run's config with --config")
    with open(path) as f:
      try:
        saved = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a jpose config ({e})") from e
    # Fields added to jpose after the run keep their defaults, which reproduce older runs.
    config = common.base_config()
    _merge(config, saved)
  config_check.validate(config)
  ckpt = checkpointing.Checkpointer(workdir, config.train.max_to_keep, read_only=True)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {ckpt.directory}; train first")
  # The state's shapes depend on the config only; the real statistics come from the
  # checkpoint, so placeholders stand in for the dataset's.
  trainer = registry.build(config, pipeline.placeholder_norm_stats(), config.train.batch_size)
  abstract_state = jax.eval_shape(trainer.init, jax.random.key(config.seed))
  state, _ = ckpt.restore(abstract_state)
  ckpt.close()
  return config, trainer, state
