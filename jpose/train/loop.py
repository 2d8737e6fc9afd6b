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
import json
import os
import signal
import time

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
from jpose.evaluate import evaluator
from jpose.evaluate import hmr as hmr_evaluation
from jpose.evaluate import plots
from jpose.evaluate import report
from jpose.train import checkpointing
from jpose.train import config_check
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
  trainer: object
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
  if getattr(registry.trainer_class(config), "reads_sequences", True):
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


def make_eval_step(exp: Experiment):
  if exp.trainer.eval_mode == "bodies":
    return hmr_evaluation.make_eval_step(exp.trainer, exp.mesh)
  if exp.trainer.eval_mode == "images":
    return evaluator.make_image_eval_step(exp.trainer, exp.mesh)
  if exp.trainer.eval_mode == "sequences":
    return evaluator.make_sequence_eval_step(exp.trainer, exp.mesh)
  return evaluator.make_eval_step(exp.trainer, exp.mesh)


def run_evaluation(exp: Experiment, state, workdir: str, writer, frame_stride: int,
                   eval_step=None, final: bool = True) -> dict:
  data_dir = exp.config.data.data_dir or None
  if exp.trainer.eval_mode == "bodies":  # mesh regression: its own metrics and pictures.
    return hmr_evaluation.run(exp.trainer, state, workdir, writer, exp.mesh, eval_step,
                              final=final, data_dir=data_dir)
  if exp.trainer.eval_mode == "images":  # recorded crops
    acc = evaluator.evaluate_images(exp.trainer, state, exp.trainer.eval_source,
                                    exp.config.eval.batch_size, exp.mesh, eval_step,
                                    frame_stride=frame_stride, data_dir=data_dir)
  elif exp.trainer.eval_mode == "sequences":  # whole sequences; the stride skips sequences.
    acc = evaluator.evaluate_sequences(exp.trainer, state, exp.eval_data,
                                       exp.config.eval.batch_size, exp.mesh, eval_step,
                                       sequence_stride=frame_stride)
  else:
    acc = evaluator.evaluate(exp.trainer, state, exp.eval_data,
                             exp.config.eval.batch_size, exp.mesh, eval_step,
                             frame_stride=frame_stride)
  step = int(jax.device_get(state.step))
  source = getattr(exp.trainer, "eval_source", None)
  results = report.results_dict(acc, step,
                                dataset=source.name if source else exp.config.data.name,
                                split=source.split if source else exp.config.eval.split,
                                input_2d=exp.config.data.input_2d, frame_stride=frame_stride)
  writer.write_scalars(step, {f"eval/{k}_action_wise": results[k]["action_wise_mean"]
                              for k in report.PROTOCOLS if k in results})
  if jax.process_index() == 0:
    table = report.markdown_table(results)
    print(f"\nEvaluation at step {step} on {results['dataset']}/{results['split']} "
          f"({results['num_frames']} poses, mm):\n{table}\n", flush=True)
    if final:
      paths = report.write(results, workdir)
      if source:
        examples = evaluator.sample_image_predictions(exp.trainer, state, source,
                                                      data_dir=data_dir)
      else:
        examples = evaluator.sample_predictions(exp.trainer, state, exp.eval_data)
      figure = plots.figure_2d_3d(examples["pose_2d"], examples["pose_3d"],
                                  examples["predicted"], examples["titles"],
                                  examples.get("image"), examples.get("image_joints"))
      figure.savefig(os.path.join(workdir, "poses.png"), dpi=80)
      if hasattr(exp.trainer, "latent_means"):
        means, labels = evaluator.latent_means(exp.trainer, state, exp.eval_data)
        plots.figure_latent_pca(means, labels).savefig(os.path.join(workdir, "latent_pca.png"),
                                                       dpi=80)
      print(f"Wrote {paths[0]}, {paths[1]} and poses.png")
  return results


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
  eval_step = make_eval_step(exp)
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
                           preemption.interruptible(eval_step), final=False)
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
                               eval_step=preemption.interruptible(eval_step))
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
