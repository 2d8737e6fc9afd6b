"""Runs a trained model over a split and accumulates per-pose errors by action.

`evaluate` scores frame-wise models (lifters) frame by frame; `evaluate_sequences` runs
temporal models over whole sequences in fixed-size chunks (one compilation for any
sequence length) and adds the velocity error (MPJVE). Eval steps are compiled once and
sharded on the data axis like training; errors are gathered to every process.
"""

from __future__ import annotations

import functools

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
from jpose.metrics import accumulator
from jpose.metrics import pose as pose_metrics
from jpose import sharding
from jpose.train import temporal


def predict_frames(trainer, state, batch) -> jax.Array:
  """trainer.predict on a batch of frames, averaged with the prediction for the mirrored
  input (mirrored back) when config.eval.flip_test is set. Image models
  (`trainer.flips_images`) mirror their crops themselves."""
  if not trainer.config.eval.flip_test or getattr(trainer, "flips_images", False):
    return trainer.predict(state, batch)

  def run(pose_2d, pose_3d):
    return trainer.predict(state, {**batch, "pose_2d": pose_2d, "pose_3d": pose_3d})
  return resident.flip_average(run, batch["pose_2d"], batch["pose_3d"], batch["camera_c"][:, 0])


def make_eval_step(trainer, mesh):
  def eval_step(state, batch):
    return _pose_errors(predict_frames(trainer, state, batch), batch["pose_3d"])
  return jax.jit(eval_step, out_shardings=sharding.batch_sharding(mesh))


def host_norm_stats(state) -> pipeline.NormStats:
  """The normalisation statistics a checkpoint was trained with, on the host. Evaluation
  uses these, never statistics recomputed from the current config's data."""
  return pipeline.NormStats(*(np.asarray(x) for x in jax.device_get(state.norm)))


def evaluate(trainer, state, data: pipeline.SequenceSet, batch_size: int, mesh,
             eval_step=None, frame_stride: int = 1, progress: bool = True
             ) -> accumulator.ErrorAccumulator:
  eval_step = eval_step or make_eval_step(trainer, mesh)
  local_batch = sharding.per_process_batch(batch_size)
  # Every process runs the same number of batches (padded and masked by `valid`), or the
  # collectives below would wait forever on a process with fewer.
  dataset = pipeline.make_dataset(data, host_norm_stats(state), local_batch, train=False,
                                  frame_stride=frame_stride)
  acc = accumulator.ErrorAccumulator()
  for batch in tqdm.tqdm(dataset, desc="eval", disable=not progress or jax.process_index() > 0,
                         leave=False):
    device_batch = sharding.to_global(mesh, {k: batch[k] for k in trainer.predict_keys})
    errors = eval_step(state, device_batch)
    errors = multihost_utils.process_allgather(errors, tiled=True)
    seq = multihost_utils.process_allgather(batch["seq_index"], tiled=True)
    valid = multihost_utils.process_allgather(batch["valid"], tiled=True)
    acc.update({k: np.asarray(v) for k, v in errors.items()},
               [data.actions[s] for s in seq], [data.subjects[s] for s in seq], valid=valid)
  return acc


def sample_predictions(trainer, state, data: pipeline.SequenceSet,
                       num_examples: int = 3) -> dict[str, np.ndarray]:
  """Predictions for a few frames spread over the split, for figures and notebooks."""
  dataset = pipeline.make_dataset(data, host_norm_stats(state), num_examples, train=False,
                                  frame_stride=max(1, data.num_frames // num_examples),
                                  shard_index=0, shard_count=1)
  batch = dataset[0]
  state = jax.device_get(state)
  if trainer.eval_mode == "sequences":  # one edge-replicated receptive field per frame.
    seq = batch["seq_index"]
    first = data.starts[seq]
    index = windows.window_index(first + batch["frame_index"], trainer.offsets, first,
                                 first + data.lengths[seq] - 1)
    predicted = jax.jit(trainer.predict_sequences)(
        state, data.pose_2d[index], resident.input_pose_3d(data)[index], data.camera_c[seq, 0])
    predicted = np.asarray(predicted)[:, 0]
  else:
    inputs = {k: jnp.asarray(batch[k]) for k in trainer.predict_keys}
    predicted = np.asarray(jax.jit(functools.partial(predict_frames, trainer))(state, inputs))
  titles = [f"{data.subjects[s]} {data.actions[s]} #{f}"
            for s, f in zip(batch["seq_index"], batch["frame_index"])]
  out = {"pose_2d": batch["pose_2d"], "pose_3d": batch["pose_3d"], "predicted": predicted,
         "titles": titles}
  if hasattr(trainer, "predict_images"):  # image models: their input and predicted 2D.
    images = jax.jit(trainer.predict_images)(state, inputs)
    out["image"], out["image_joints"] = np.asarray(images["image"]), np.asarray(
        images["joints_2d"])
  return out


def _record_label(image_id: str) -> tuple[int, int]:
  """'S9/Walking 1/54138969/000064' -> (9, index of 'Walking' in ACTION_CLASSES); ids of
  other layouts -> (-1, -1). Integers, so every process can gather every label."""
  try:
    subject, action, _, _ = h36m_video_files.parse_frame_id(image_id)
    return int(subject[1:]), h36m_files.ACTION_CLASSES.index(accumulator.action_class(action))
  except ValueError:
    return -1, -1


def make_image_eval_step(trainer, mesh):
  def eval_step(state, batch):
    return _pose_errors(trainer.predict_records(state, batch), batch["pose_3d"])
  return jax.jit(eval_step, out_shardings=sharding.batch_sharding(mesh))


def image_eval_dataset(source: image_pipeline.Source, batch_size: int, crop_size: int,
                       records, frame_stride: int = 1, shard_index=None, shard_count=None):
  """Every frame_stride-th of an image split's `records` (`image_pipeline.open_serialized`),
  in order, in padded batches."""
  if frame_stride > 1:
    records = image_pipeline.InOrder(records, np.arange(0, len(records), frame_stride))
  return image_pipeline.make_dataset([source], batch_size, train=False, crop_size=crop_size,
                                     data_sources=[records], shard_index=shard_index,
                                     shard_count=shard_count)


def evaluate_images(trainer, state, source: image_pipeline.Source, batch_size: int, mesh,
                    eval_step=None, frame_stride: int = 1, progress: bool = True,
                    data_dir: str | None = None) -> accumulator.ErrorAccumulator:
  """Errors of an image model on recorded crops with 3D (e.g. h36m_images' test split),
  grouped by the subject and action in each record's id."""
  eval_step = eval_step or make_image_eval_step(trainer, mesh)
  dataset = image_eval_dataset(source, sharding.per_process_batch(batch_size), trainer.size,
                               image_pipeline.open_serialized(source, data_dir), frame_stride)
  acc = accumulator.ErrorAccumulator()
  for batch in tqdm.tqdm(dataset, desc="eval", disable=not progress or jax.process_index() > 0,
                         leave=False):
    device_batch = sharding.to_global(mesh, {k: batch[k] for k in trainer.record_keys})
    errors = multihost_utils.process_allgather(eval_step(state, device_batch), tiled=True)
    labels = np.array([_record_label(i) for i in batch["image_id"]], np.int32)
    labels = multihost_utils.process_allgather(labels, tiled=True)
    valid = multihost_utils.process_allgather(batch["valid"] & (batch["has_3d"] > 0), tiled=True)
    known = labels[:, 0] >= 0
    if np.any(valid & ~known):
      raise ValueError(f"evaluation on '{source.name}/{source.split}': record ids such as "
                       f"{batch['image_id'][0]!r} do not name a Human3.6M subject and action")
    actions = [h36m_files.ACTION_CLASSES[a] if a >= 0 else "" for a in labels[:, 1]]
    subjects = [f"S{s}" for s in labels[:, 0]]
    acc.update({k: np.asarray(v) for k, v in errors.items()}, actions, subjects, valid=valid)
  return acc


def sample_image_predictions(trainer, state, source: image_pipeline.Source,
                             num_examples: int = 3, data_dir: str | None = None
                             ) -> dict[str, np.ndarray]:
  """`sample_predictions` for recorded crops: a few records spread over the split."""
  records = image_pipeline.open_serialized(source, data_dir)
  dataset = image_eval_dataset(source, num_examples, trainer.size, records,
                               max(1, len(records) // num_examples), 0, 1)
  batch = dataset[0]
  inputs = {k: jnp.asarray(batch[k]) for k in trainer.record_keys}
  state = jax.device_get(state)
  # One prediction for the figure's 2D and the 3D, as predict_records makes it.
  crops = jax.jit(functools.partial(trainer.predict_crops,
                                    flip_test=trainer.config.eval.flip_test))(state, inputs["image"])
  predicted = jax.jit(trainer.crop_to_camera)(crops, inputs)
  return {"pose_2d": batch["joints_2d"], "pose_3d": batch["pose_3d"],
          "predicted": np.asarray(predicted), "titles": list(batch["image_id"]),
          "image": batch["image"].astype(np.float32) / 255.0,
          "image_joints": np.asarray(crops)[..., :2]}


def _pose_errors(predicted, target) -> dict[str, jax.Array]:
  """Per-pose MPJPE, P-MPJPE and N-MPJPE (mm); the target's root is the origin."""
  return {"mpjpe": pose_metrics.mpjpe(predicted, target),
          "p_mpjpe": pose_metrics.p_mpjpe(predicted, target),
          "n_mpjpe": pose_metrics.n_mpjpe(predicted, target)}


def make_sequence_eval_step(trainer, mesh):
  def eval_step(state, chunks):
    key = jax.random.fold_in(jax.random.key(0), chunks["batch_number"][0])
    predicted = trainer.predict_sequences(state, chunks["pose_2d"], chunks["pose_3d_in"],
                                          chunks["principal_x"], key)
    return predicted, _pose_errors(predicted, chunks["target"])
  out = sharding.batch_sharding(mesh)
  return jax.jit(eval_step, out_shardings=(out, out))


def _sequence_chunks(trainer, data: pipeline.SequenceSet, sequences, chunk: int):
  """Yields (sequence, chunk arrays) for every chunk of every listed sequence."""
  causal = trainer.config.model.causal
  # A depth TCN reads the z of pose_3d_in: the truth's, or a first stage's prediction.
  inputs_3d = resident.input_pose_3d(data)
  for s in sequences:
    frames = data.sequence(s)
    pose_2d, pose_3d, pose_3d_in = data.pose_2d[frames], data.pose_3d[frames], inputs_3d[frames]
    count = -(-pose_2d.shape[0] // chunk)
    target = np.pad(pose_3d, [(0, count * chunk - pose_3d.shape[0]), (0, 0), (0, 0)], mode="edge")
    valid = np.arange(count * chunk) < pose_3d.shape[0]
    yield s, {
        "pose_2d": temporal.chunk_sequence(pose_2d, trainer.field, chunk, causal),
        "pose_3d_in": temporal.chunk_sequence(pose_3d_in, trainer.field, chunk, causal),
        "target": target.reshape(count, chunk, 17, 3),
        "valid": valid.reshape(count, chunk),
        "principal_x": np.full(count, data.camera_c[s, 0], np.float32),
    }


def evaluate_sequences(trainer, state, data: pipeline.SequenceSet, batch_size: int, mesh,
                       eval_step=None, sequence_stride: int = 1, progress: bool = True
                       ) -> accumulator.ErrorAccumulator:
  """Per-frame errors of whole sequences, plus MPJVE between consecutive frames."""
  eval_step = eval_step or make_sequence_eval_step(trainer, mesh)
  chunk = trainer.config.eval.chunk_frames
  devices = jax.device_count()
  chunks_per_batch = max(1, batch_size // chunk)
  chunks_per_batch = -(-chunks_per_batch // devices) * devices
  sequences = list(range(0, len(data.lengths), sequence_stride))
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
    errors = {k: np.asarray(v) for k, v in
              multihost_utils.process_allgather(errors, tiled=True).items()}
    for i, s in enumerate(owners):
      mask = valid[i]
      predictions[s].append(predicted[i][mask])
      acc.update({k: v[i][mask] for k, v in errors.items()},
                 [data.actions[s]] * int(mask.sum()), [data.subjects[s]] * int(mask.sum()))
    pending.clear()

  chunks = _sequence_chunks(trainer, data, sequences, chunk)
  for s, arrays in tqdm.tqdm(chunks, total=len(sequences), desc="eval", leave=False,
                             disable=not progress or jax.process_index() > 0):
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


def latent_means(trainer, state, data: pipeline.SequenceSet,
                 num_frames: int = 5000) -> tuple[np.ndarray, list[str]]:
  """Latent means of frames spread over the split, with their action names."""
  from jpose.metrics import accumulator as acc_lib  # pylint: disable=g-import-not-at-top
  stride = max(1, data.num_frames // num_frames)
  dataset = pipeline.make_dataset(data, host_norm_stats(state), 1024, train=False,
                                  frame_stride=stride, shard_index=0, shard_count=1)
  fn = jax.jit(trainer.latent_means)
  state = jax.device_get(state)
  means, labels = [], []
  for batch in dataset:
    mu = np.asarray(fn(state, {k: jnp.asarray(batch[k]) for k in trainer.predict_keys}))
    means.append(mu[batch["valid"]])
    labels += [acc_lib.action_class(data.actions[s]) for s in batch["seq_index"][batch["valid"]]]
  return np.concatenate(means), labels
