"""Evaluators of 3D pose errors: each is built from predict functions and data (never a
trainer), and `run(state)` accumulates per-pose errors by action.

`FrameEvaluator` scores frame-wise models (lifters, rendered frames) frame by frame;
`ImageEvaluator` scores recorded crops; `SequenceEvaluator` runs temporal models over whole
sequences in fixed-size chunks (one compilation for any sequence length) and adds the
velocity error (MPJVE). Every one compiles its step with the one `make_eval_step`, sharded
on the data axis like training; errors are gathered to every process.
`evaluate(state, workdir, writer, ...)` runs, logs and writes the report and figures.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import numpy as np
import tqdm

from jpose.formats import h36m_files
from jpose.formats import h36m_video_files
from jpose.data import image_pipeline
from jpose.data import pipeline
from jpose.data import resident
from jpose.data import windows
from jpose.evaluate import plots
from jpose.evaluate import report
from jpose.metrics import accumulator
from jpose.metrics import pose as pose_metrics
from jpose import sharding

Batch = dict[str, jax.Array]
# (state, batch) -> (B, 17, 3) root-relative camera coordinates, mm.
PredictFn = Callable[[Any, Batch], jax.Array]


def pose_errors(predicted, target) -> dict[str, jax.Array]:
  """Per-pose MPJPE, P-MPJPE and N-MPJPE (mm); the target's root is the origin."""
  return {"mpjpe": pose_metrics.mpjpe(predicted, target),
          "p_mpjpe": pose_metrics.p_mpjpe(predicted, target),
          "n_mpjpe": pose_metrics.n_mpjpe(predicted, target)}


def errors_of(predict: PredictFn, target_key: str = "pose_3d") -> Callable:
  """(state, batch) -> `pose_errors` of `predict` against batch[target_key]."""
  def metrics(state, batch):
    return pose_errors(predict(state, batch), batch[target_key])
  return metrics


def make_eval_step(metrics_fn: Callable, mesh):
  """The one eval step of every evaluator: `metrics_fn(state, batch, *constants)` ->
  per-example outputs (any tree of arrays with the batch axis first), compiled once, its
  outputs sharded on the data axis like the batch."""
  return jax.jit(metrics_fn, out_shardings=sharding.batch_sharding(mesh))


def host_norm_stats(state) -> pipeline.NormStats:
  """The normalisation statistics a checkpoint was trained with, on the host. Evaluation
  uses these, never statistics recomputed from the current config's data."""
  return pipeline.NormStats(*(np.asarray(x) for x in jax.device_get(state.norm)))


class PoseEvaluator:
  """What the pose-error evaluators share: the report (`evaluate`). A subclass sets
  `dataset`, `split` and `input_2d` (the report's labels) and the step, and defines
  `run(state, frame_stride, eval_step, progress)` and `examples(state)`."""

  dataset: str
  split: str
  input_2d: str
  eval_step: Callable

  def run(self, state, frame_stride: int = 1, eval_step=None,
          progress: bool = True) -> accumulator.ErrorAccumulator:
    raise NotImplementedError

  def examples(self, state) -> dict[str, np.ndarray]:
    raise NotImplementedError

  def extra_figures(self, state, workdir: str) -> list[str]:
    """Figures beyond poses.png written at the end; returns their file names."""
    del state, workdir
    return []

  def evaluate(self, state, workdir: str, writer, frame_stride: int, eval_step=None,
               final: bool = True) -> dict:
    """Runs, logs eval/<protocol>_action_wise, prints the table; with `final` writes the
    results and the figures into workdir."""
    acc = self.run(state, frame_stride, eval_step)
    step = int(jax.device_get(state.step))
    results = report.results_dict(acc, step, dataset=self.dataset, split=self.split,
                                  input_2d=self.input_2d, frame_stride=frame_stride)
    writer.write_scalars(step, {f"eval/{k}_action_wise": results[k]["action_wise_mean"]
                                for k in report.PROTOCOLS if k in results})
    if jax.process_index() == 0:
      table = report.pose_error_tables(results)
      print(f"\nEvaluation at step {step} on {results['dataset']}/{results['split']} "
            f"({results['num_frames']} poses, mm):\n{table}\n", flush=True)
      if final:
        paths = report.write(results, workdir)
        examples = self.examples(state)
        figure = plots.figure_2d_3d(examples["pose_2d"], examples["pose_3d"],
                                    examples["predicted"], examples["titles"],
                                    examples.get("image"), examples.get("image_joints"))
        figure.savefig(os.path.join(workdir, "poses.png"), dpi=80)
        names = ["poses.png"] + self.extra_figures(state, workdir)
        print(f"Wrote {paths[0]}, {paths[1]} and {', '.join(names)}")
    return results


def _gathered_errors(errors) -> dict[str, np.ndarray]:
  return {k: np.asarray(v) for k, v in
          multihost_utils.process_allgather(errors, tiled=True).items()}


class FrameEvaluator(PoseEvaluator):
  """Frame-wise models on a SequenceSet: host batches of `predict_keys` (pixels), frame by
  frame; the stride skips frames.

  predict_fn: (state, batch) -> (B, 17, 3) mm (`resident.flip_averaged` for a flip test).
  images_fn: optional (state, batch) -> {"image", "joints_2d"}, the model's input images
    and its 2D on them (for poses.png). latent_fn: optional (state, batch) -> (B, D) latent
    means (latent_pca.png).
  """

  def __init__(self, predict_fn: PredictFn, predict_keys, data: pipeline.SequenceSet,
               batch_size: int, mesh, *, dataset: str, split: str, input_2d: str = "",
               images_fn: Callable | None = None, latent_fn: Callable | None = None):
    self.predict_fn, self.predict_keys, self.data = predict_fn, tuple(predict_keys), data
    self.batch_size, self.mesh = batch_size, mesh
    self.dataset, self.split, self.input_2d = dataset, split, input_2d
    self.images_fn, self.latent_fn = images_fn, latent_fn
    self.eval_step = make_eval_step(errors_of(predict_fn), mesh)

  def run(self, state, frame_stride: int = 1, eval_step=None,
          progress: bool = True) -> accumulator.ErrorAccumulator:
    eval_step = eval_step or self.eval_step
    data = self.data
    local_batch = sharding.per_process_batch(self.batch_size)
    # Every process runs the same number of batches (padded and masked by `valid`), or the
    # collectives below would wait forever on a process with fewer.
    dataset = pipeline.make_dataset(data, host_norm_stats(state), local_batch, train=False,
                                    frame_stride=frame_stride)
    acc = accumulator.ErrorAccumulator()
    for batch in tqdm.tqdm(dataset, desc="eval",
                           disable=not progress or jax.process_index() > 0, leave=False):
      device_batch = sharding.to_global(self.mesh, {k: batch[k] for k in self.predict_keys})
      errors = _gathered_errors(eval_step(state, device_batch))
      seq = multihost_utils.process_allgather(batch["seq_index"], tiled=True)
      valid = multihost_utils.process_allgather(batch["valid"], tiled=True)
      acc.update(errors, [data.actions[s] for s in seq], [data.subjects[s] for s in seq],
                 valid=valid)
    return acc

  def examples(self, state, num_examples: int = 3) -> dict[str, np.ndarray]:
    """Predictions for a few frames spread over the split, for figures and notebooks."""
    data = self.data
    batch = _spread_frames(data, state, num_examples)
    state = jax.device_get(state)
    inputs = {k: jnp.asarray(batch[k]) for k in self.predict_keys}
    predicted = np.asarray(jax.jit(self.predict_fn)(state, inputs))
    out = {"pose_2d": batch["pose_2d"], "pose_3d": batch["pose_3d"], "predicted": predicted,
           "titles": _titles(data, batch)}
    if self.images_fn is not None:  # image models: their input and predicted 2D.
      images = jax.jit(self.images_fn)(state, inputs)
      out["image"] = np.asarray(images["image"])
      out["image_joints"] = np.asarray(images["joints_2d"])
    return out

  def latent_means(self, state, num_frames: int = 5000) -> tuple[np.ndarray, list[str]]:
    """Latent means of frames spread over the split, with their action names."""
    data = self.data
    stride = max(1, data.num_frames // num_frames)
    dataset = pipeline.make_dataset(data, host_norm_stats(state), 1024, train=False,
                                    frame_stride=stride, shard_index=0, shard_count=1)
    fn = jax.jit(self.latent_fn)
    state = jax.device_get(state)
    means, labels = [], []
    for batch in dataset:
      mu = np.asarray(fn(state, {k: jnp.asarray(batch[k]) for k in self.predict_keys}))
      means.append(mu[batch["valid"]])
      labels += [accumulator.action_class(data.actions[s])
                 for s in batch["seq_index"][batch["valid"]]]
    return np.concatenate(means), labels

  def extra_figures(self, state, workdir: str) -> list[str]:
    if self.latent_fn is None:
      return []
    means, labels = self.latent_means(state)
    plots.figure_latent_pca(means, labels).savefig(os.path.join(workdir, "latent_pca.png"),
                                                   dpi=80)
    return ["latent_pca.png"]


def _spread_frames(data: pipeline.SequenceSet, state, num_examples: int) -> dict:
  """One host batch of `num_examples` frames spread over the split."""
  return pipeline.make_dataset(data, host_norm_stats(state), num_examples, train=False,
                               frame_stride=max(1, data.num_frames // num_examples),
                               shard_index=0, shard_count=1)[0]


def _titles(data: pipeline.SequenceSet, batch) -> list[str]:
  return [f"{data.subjects[s]} {data.actions[s]} #{f}"
          for s, f in zip(batch["seq_index"], batch["frame_index"])]


def _record_label(image_id: str) -> tuple[int, int]:
  """'S9/Walking 1/54138969/000064' -> (9, index of 'Walking' in ACTION_CLASSES); ids of
  other layouts -> (-1, -1). Integers, so every process can gather every label."""
  try:
    subject, action, _, _ = h36m_video_files.parse_frame_id(image_id)
    return int(subject[1:]), h36m_files.ACTION_CLASSES.index(accumulator.action_class(action))
  except ValueError:
    return -1, -1


def image_eval_dataset(source: image_pipeline.Source, batch_size: int, crop_size: int,
                       records, frame_stride: int = 1, shard_index=None, shard_count=None):
  """Every frame_stride-th of an image split's `records` (`image_pipeline.open_serialized`),
  in order, in padded batches."""
  if frame_stride > 1:
    records = image_pipeline.InOrder(records, np.arange(0, len(records), frame_stride))
  return image_pipeline.make_dataset([source], batch_size, train=False, crop_size=crop_size,
                                     data_sources=[records], shard_index=shard_index,
                                     shard_count=shard_count)


class ImageEvaluator(PoseEvaluator):
  """An image model on recorded crops with 3D (e.g. h36m_images' test split), grouped by
  the subject and action in each record's id; the stride skips records.

  predict_fn: (state, crops of `record_keys`) -> (B, 17, 3) mm.
  crops_fn: optional (state, images) -> (B, 17, 3) crop-pixel x, y and depth, and
  to_camera_fn: (those joints, batch) -> (B, 17, 3) mm: the figure's 2D and 3D from one
  prediction.
  """

  def __init__(self, predict_fn: PredictFn, record_keys, source: image_pipeline.Source,
               batch_size: int, mesh, crop_size: int, *, input_2d: str = "",
               data_dir: str | None = None, crops_fn: Callable | None = None,
               to_camera_fn: Callable | None = None):
    self.predict_fn, self.record_keys, self.source = predict_fn, tuple(record_keys), source
    self.batch_size, self.mesh, self.crop_size, self.data_dir = (batch_size, mesh, crop_size,
                                                                  data_dir)
    self.dataset, self.split, self.input_2d = source.name, source.split, input_2d
    self.crops_fn, self.to_camera_fn = crops_fn, to_camera_fn
    self.eval_step = make_eval_step(errors_of(predict_fn), mesh)

  def run(self, state, frame_stride: int = 1, eval_step=None,
          progress: bool = True) -> accumulator.ErrorAccumulator:
    eval_step = eval_step or self.eval_step
    source = self.source
    dataset = image_eval_dataset(source, sharding.per_process_batch(self.batch_size),
                                 self.crop_size,
                                 image_pipeline.open_serialized(source, self.data_dir),
                                 frame_stride)
    acc = accumulator.ErrorAccumulator()
    for batch in tqdm.tqdm(dataset, desc="eval",
                           disable=not progress or jax.process_index() > 0, leave=False):
      device_batch = sharding.to_global(self.mesh, {k: batch[k] for k in self.record_keys})
      errors = _gathered_errors(eval_step(state, device_batch))
      labels = np.array([_record_label(i) for i in batch["image_id"]], np.int32)
      labels = multihost_utils.process_allgather(labels, tiled=True)
      valid = multihost_utils.process_allgather(batch["valid"] & (batch["has_3d"] > 0),
                                                tiled=True)
      known = labels[:, 0] >= 0
      if np.any(valid & ~known):
        raise ValueError(f"evaluation on '{source.name}/{source.split}': record ids such as "
                         f"{batch['image_id'][0]!r} do not name a Human3.6M subject and "
                         "action")
      actions = [h36m_files.ACTION_CLASSES[a] if a >= 0 else "" for a in labels[:, 1]]
      subjects = [f"S{s}" for s in labels[:, 0]]
      acc.update(errors, actions, subjects, valid=valid)
    return acc

  def examples(self, state, num_examples: int = 3) -> dict[str, np.ndarray]:
    """A few records spread over the split, predicted, for figures and notebooks."""
    records = image_pipeline.open_serialized(self.source, self.data_dir)
    dataset = image_eval_dataset(self.source, num_examples, self.crop_size, records,
                                 max(1, len(records) // num_examples), 0, 1)
    batch = dataset[0]
    inputs = {k: jnp.asarray(batch[k]) for k in self.record_keys}
    state = jax.device_get(state)
    out = {"pose_2d": batch["joints_2d"], "pose_3d": batch["pose_3d"],
           "titles": list(batch["image_id"]),
           "image": batch["image"].astype(np.float32) / 255.0}
    if self.crops_fn is None:
      out["predicted"] = np.asarray(jax.jit(self.predict_fn)(state, inputs))
      return out
    # One prediction for the figure's 2D and the 3D, as predict_fn makes it.
    crops = jax.jit(self.crops_fn)(state, inputs["image"])
    out["predicted"] = np.asarray(jax.jit(self.to_camera_fn)(crops, inputs))
    out["image_joints"] = np.asarray(crops)[..., :2]
    return out


class SequenceEvaluator(PoseEvaluator):
  """A temporal model over whole sequences of a SequenceSet, in chunks of `chunk_frames`
  outputs (edge-padded to its receptive field `field`); the stride skips sequences.
  Per-frame errors, plus MPJVE between consecutive frames.

  predict_fn: (state, pose_2d (B, L + field - 1, 17, 2), pose_3d_in (..., 3),
  principal_x (B,), noise key or None) -> (B, L, 17, 3) mm.
  """

  def __init__(self, predict_fn: Callable, field: int, causal: bool, chunk_frames: int,
               data: pipeline.SequenceSet, batch_size: int, mesh, *, dataset: str,
               split: str, input_2d: str = ""):
    self.predict_fn, self.field, self.causal, self.chunk = (predict_fn, field, causal,
                                                            chunk_frames)
    self.offsets = windows.window_offsets(field, causal)
    self.data, self.batch_size, self.mesh = data, batch_size, mesh
    self.dataset, self.split, self.input_2d = dataset, split, input_2d

    def metrics(state, chunks):
      key = jax.random.fold_in(jax.random.key(0), chunks["batch_number"][0])
      predicted = predict_fn(state, chunks["pose_2d"], chunks["pose_3d_in"],
                             chunks["principal_x"], key)
      return predicted, pose_errors(predicted, chunks["target"])
    self.eval_step = make_eval_step(metrics, mesh)

  def _chunks(self, sequences):
    """Yields (sequence, chunk arrays) for every chunk of every listed sequence."""
    data, chunk = self.data, self.chunk
    # A depth TCN reads the z of pose_3d_in: the truth's, or a first stage's prediction.
    inputs_3d = resident.input_pose_3d(data)
    for s in sequences:
      frames = data.sequence(s)
      pose_2d, pose_3d = data.pose_2d[frames], data.pose_3d[frames]
      pose_3d_in = inputs_3d[frames]
      count = -(-pose_2d.shape[0] // chunk)
      target = np.pad(pose_3d, [(0, count * chunk - pose_3d.shape[0]), (0, 0), (0, 0)],
                      mode="edge")
      valid = np.arange(count * chunk) < pose_3d.shape[0]
      yield s, {
          "pose_2d": windows.chunk_sequence(pose_2d, self.field, chunk, self.causal),
          "pose_3d_in": windows.chunk_sequence(pose_3d_in, self.field, chunk, self.causal),
          "target": target.reshape(count, chunk, 17, 3),
          "valid": valid.reshape(count, chunk),
          "principal_x": np.full(count, data.camera_c[s, 0], np.float32),
      }

  def run(self, state, frame_stride: int = 1, eval_step=None,
          progress: bool = True) -> accumulator.ErrorAccumulator:
    """frame_stride: every n-th sequence (a sequence is scored whole)."""
    eval_step = eval_step or self.eval_step
    data, mesh = self.data, self.mesh
    devices = jax.device_count()
    chunks_per_batch = max(1, self.batch_size // self.chunk)
    chunks_per_batch = -(-chunks_per_batch // devices) * devices
    sequences = list(range(0, len(data.lengths), frame_stride))
    predictions = {s: [] for s in sequences}
    pending: list[tuple[int, dict]] = []
    acc = accumulator.ErrorAccumulator()
    batch_number = 0

    def flush():
      nonlocal batch_number
      owners, parts = [], []
      for s, arrays in pending:
        owners += [s] * arrays["valid"].shape[0]
        parts.append(arrays)
      batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
      used = batch["valid"].shape[0]
      if used < chunks_per_batch:  # pad with copies of the last chunk, marked invalid.
        extra = chunks_per_batch - used
        batch = {k: np.concatenate([v, np.repeat(v[-1:], extra, 0)]) for k, v in batch.items()}
        batch["valid"][used:] = False
      batch["batch_number"] = np.full(chunks_per_batch, batch_number, np.int32)
      batch_number += 1
      valid = batch.pop("valid")
      predicted, errors = eval_step(state, sharding.host_global_to_device(mesh, batch))
      predicted = np.asarray(multihost_utils.process_allgather(predicted, tiled=True))
      errors = _gathered_errors(errors)
      for i, s in enumerate(owners):
        mask = valid[i]
        predictions[s].append(predicted[i][mask])
        acc.update({k: v[i][mask] for k, v in errors.items()},
                   [data.actions[s]] * int(mask.sum()), [data.subjects[s]] * int(mask.sum()))
      pending.clear()

    for s, arrays in tqdm.tqdm(self._chunks(sequences), total=len(sequences), desc="eval",
                               leave=False, disable=not progress or jax.process_index() > 0):
      start = 0
      while start < arrays["valid"].shape[0]:
        room = chunks_per_batch - sum(p[1]["valid"].shape[0] for p in pending)
        pending.append((s, {k: v[start:start + room] for k, v in arrays.items()}))
        start += room
        if sum(p[1]["valid"].shape[0] for p in pending) == chunks_per_batch:
          flush()
    if pending:
      flush()
    # Velocity errors over the concatenated sequences, masking the steps across borders.
    predicted = jnp.asarray(np.concatenate([np.concatenate(predictions[s]) for s in sequences]))
    target = jnp.asarray(np.concatenate([data.pose_3d[data.sequence(s)] for s in sequences]))
    owner = np.concatenate([np.full(data.lengths[s], s) for s in sequences])
    velocity = np.asarray(pose_metrics.mpjve(predicted, target, time_axis=0))
    inside = owner[1:] == owner[:-1]
    acc.update({"mpjve": velocity}, [data.actions[s] for s in owner[1:]],
               [data.subjects[s] for s in owner[1:]], valid=inside)
    return acc

  def examples(self, state, num_examples: int = 3) -> dict[str, np.ndarray]:
    """A few frames spread over the split, each predicted from its edge-replicated
    receptive field, for figures and notebooks."""
    data = self.data
    batch = _spread_frames(data, state, num_examples)
    state = jax.device_get(state)
    seq = batch["seq_index"]
    first = data.starts[seq]
    index = windows.window_index(first + batch["frame_index"], self.offsets, first,
                                 first + data.lengths[seq] - 1)
    predicted = jax.jit(self.predict_fn)(
        state, data.pose_2d[index], resident.input_pose_3d(data)[index], data.camera_c[seq, 0])
    return {"pose_2d": batch["pose_2d"], "pose_3d": batch["pose_3d"],
            "predicted": np.asarray(predicted)[:, 0], "titles": _titles(data, batch)}
