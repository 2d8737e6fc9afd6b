"""grain input pipelines over Human3.6M-format datasets (real or synthetic).

A split is loaded once into host memory as a `SequenceSet` (Human3.6M is ~0.5 M frames
per camera). Batches are then gathered with vectorised numpy from a seeded per-epoch
permutation of frame indices: grain drives the iteration, prefetching and the
saveable iterator state, while the per-element cost stays out of Python.

Batch dict (B = batch, L = window length when windows are requested):
  pose_2d       (B[, L], 17, 2) pixels, as recorded (NaN where a detector has no joint);
                the trainers normalise it on the device (`trainers.normalised_2d`), in the
                config's joint set and 2D frame
  pose_3d       (B, 17, 3) camera frame, root-centred, mm (the window's centre frame)
  pose_3d_norm  (B, 17, 3) normalised
  camera_f, camera_c (B, 2) the frame's camera intrinsics; root_depth (B,) mm
  camera_up     (B, 3) the world's up axis in the (flipped) camera frame
  seq_index     (B,) int32 index into SequenceSet.subjects / actions / cameras
  frame_index   (B,) int32 frame within its sequence
  valid         (B,) bool; False on the padding of a final partial eval batch
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import NamedTuple

from absl import logging
import grain
import jax
import numpy as np

from jpose.data import datasets
from jpose.data import lifter_inputs
from jpose.formats import stage1
from jpose.data import windows
from jpose.geometry import skeleton

INPUT_2D_FIELDS = {"gt": "pose_2d_gt", "sh": "pose_2d_sh"}


@dataclasses.dataclass
class SequenceSet:
  """The frames of one split, concatenated; per-sequence metadata alongside."""

  pose_2d: np.ndarray  # (N, 17, 2) pixels
  pose_3d: np.ndarray  # (N, 17, 3) camera frame, mm, root-centred
  root_depth: np.ndarray  # (N,) camera-frame depth of the root, mm
  seq_index: np.ndarray  # (N,) int32
  frame_index: np.ndarray  # (N,) int32
  starts: np.ndarray  # (S,) first frame of each sequence in the flat arrays
  lengths: np.ndarray  # (S,)
  subjects: list[str]
  actions: list[str]
  cameras: list[str]
  camera_c: np.ndarray  # (S, 2) principal points, for flipping 2D poses
  camera_f: np.ndarray  # (S, 2)
  camera_up: np.ndarray  # (S, 3) the world's up axis (+z) in the camera frame (R's 3rd column)
  fps: float
  # (N, 17) root-relative depth, mm, that a depth-reading TCN takes as input in place of
  # the ground truth's: a first stage's predictions (jpose.formats.stage1). None: the truth.
  input_depth: np.ndarray | None = None

  @property
  def num_frames(self) -> int:
    return int(self.pose_3d.shape[0])

  def sequence(self, s: int) -> slice:
    return slice(int(self.starts[s]), int(self.starts[s] + self.lengths[s]))

  def select(self, keep) -> SequenceSet:
    """The sequences at indices `keep`, in that order, with every per-frame array."""
    keep = np.asarray(keep, np.int64)
    rows = (np.concatenate([np.arange(self.starts[s], self.starts[s] + self.lengths[s])
                            for s in keep]) if len(keep) else np.zeros(0, np.int64))
    lengths = self.lengths[keep]
    per_frame = {f: getattr(self, f)[rows] for f in ("pose_2d", "pose_3d", "root_depth",
                                                     "frame_index")}
    return dataclasses.replace(
        self, **per_frame,
        seq_index=np.repeat(np.arange(len(keep), dtype=np.int32), lengths),
        starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(self.starts.dtype),
        lengths=lengths, subjects=[self.subjects[s] for s in keep],
        actions=[self.actions[s] for s in keep], cameras=[self.cameras[s] for s in keep],
        camera_c=self.camera_c[keep], camera_f=self.camera_f[keep],
        camera_up=self.camera_up[keep],
        input_depth=None if self.input_depth is None else self.input_depth[rows])


class NormStats(NamedTuple):
  """Per-joint mean and std of 2D inputs and root-centred 3D targets (train split)."""

  mean_2d: np.ndarray  # (17, 2)
  std_2d: np.ndarray
  mean_3d: np.ndarray  # (17, 3)
  std_3d: np.ndarray


def placeholder_norm_stats() -> NormStats:
  """Zero means and unit stds: for trainers that read no Human3.6M sequences, and where
  the real statistics come from a checkpoint."""
  return NormStats(np.zeros((17, 2), np.float32), np.ones((17, 2), np.float32),
                   np.zeros((17, 3), np.float32), np.ones((17, 3), np.float32))


def load_split(name: str, split: str, input_2d: str = "gt", data_dir: str | None = None,
               manual_dir: str | None = None, max_sequences: int | None = None,
               frame_stride: int = 1) -> SequenceSet:
  """Reads one split of dataset `name`, building the dataset first if it is missing.
  `frame_stride` keeps every n-th frame of each sequence (a lower frame rate)."""
  if input_2d not in INPUT_2D_FIELDS:
    raise ValueError(f"data.input_2d: '{input_2d}' is not one of {sorted(INPUT_2D_FIELDS)}")
  builder = datasets.prepare(name, data_dir, manual_dir)
  if split not in builder.info.splits:
    raise ValueError(f"dataset '{name}' at {builder.data_dir} has no '{split}' split "
                     f"(it has {sorted(builder.info.splits)})")
  source = builder.as_data_source(split=split)
  records = [_read_record(source, i, name, split, builder.data_dir) for i in range(len(source))]
  # tfds shuffles records on write; a fixed order keeps runs comparable across builds.
  records.sort(key=lambda r: (_text(r["subject"]), _text(r["action"]), _text(r["camera"])))
  if max_sequences and max_sequences < len(records):
    # Evenly spaced, so a small subset still spans subjects and actions.
    records = [records[i] for i in np.linspace(0, len(records) - 1, max_sequences).astype(int)]
  field = INPUT_2D_FIELDS[input_2d]
  pose_2d, pose_3d, root_depth, kept, dropped = [], [], [], [], []
  for r in records:
    p2 = np.asarray(r[field], np.float32)[::frame_stride]
    usable = ~np.isnan(np.delete(p2, skeleton.NECK_NOSE, axis=1)).any(axis=(1, 2))
    if not usable.all():
      dropped.append(f"{_text(r['subject'])}/{_text(r['action'])}/{_text(r['camera'])}: "
                     f"{int((~usable).sum())} frames without {field}")
    if not usable.any():
      continue
    p3 = np.asarray(r["pose_3d"], np.float32)[::frame_stride][usable]
    pose_2d.append(p2[usable])
    pose_3d.append(p3 - p3[:, skeleton.ROOT:skeleton.ROOT + 1])
    root_depth.append(p3[:, skeleton.ROOT, 2])
    kept.append(r)
  for message in dropped:
    logging.warning("%s/%s: skipped %s", name, split, message)
  if not kept:
    raise ValueError(f"dataset '{name}' split '{split}' has no usable frames")
  lengths = np.array([p.shape[0] for p in pose_3d])
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
  return SequenceSet(
      pose_2d=np.concatenate(pose_2d), pose_3d=np.concatenate(pose_3d),
      root_depth=np.concatenate(root_depth),
      seq_index=np.repeat(np.arange(len(kept), dtype=np.int32), lengths),
      frame_index=np.concatenate([np.arange(n, dtype=np.int32) for n in lengths]),
      starts=starts, lengths=lengths,
      subjects=[_text(r["subject"]) for r in kept], actions=[_text(r["action"]) for r in kept],
      cameras=[_text(r["camera"]) for r in kept],
      camera_c=np.stack([np.asarray(r["camera_c"], np.float32) for r in kept]),
      camera_f=np.stack([np.asarray(r["camera_f"], np.float32) for r in kept]),
      camera_up=np.stack([np.asarray(r["camera_R"], np.float32)[:, 2] for r in kept]),
      fps=float(kept[0]["fps"]) / frame_stride)


def load_config_split(config, split: str) -> SequenceSet:
  """`load_split` with the dataset fields of a jpose config (config.data.*). With
  data.input_2d="stage1", the 2D and depth inputs are a first stage's predictions
  (`jpose.formats.stage1`), and the targets the dataset's ground truth."""
  d = config.data
  data = load_split(d.name, split, input_2d="gt" if d.input_2d == "stage1" else d.input_2d,
                    data_dir=d.data_dir or None, manual_dir=d.manual_dir or None,
                    max_sequences=d.max_sequences or None, frame_stride=d.frame_stride)
  if d.input_2d == "stage1":
    data = stage1.attach(data, d.stage1_dir, split, d.frame_stride)
  return data


def _read_record(source, index: int, name: str, split: str, data_dir) -> dict:
  """One record, or an error naming the dataset folder, the record and how to fix it."""
  fix = f"rebuild it with: python -m jpose.prepare --dataset {name} --overwrite"
  try:
    record = source[index]
  except Exception as e:  # array_record and tfds raise many types on damaged files.
    raise ValueError(f"{data_dir}: record {index} of split '{split}' cannot be read "
                     f"({type(e).__name__}: {e}); {fix}") from e
  for field in ("pose_3d", "pose_2d_gt"):
    if not np.all(np.isfinite(record[field])):
      raise ValueError(f"{data_dir}: record {index} of split '{split}' "
                       f"({_text(record['subject'])} {_text(record['action'])}) has NaN or "
                       f"infinite values in '{field}'; {fix}")
  return record


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def compute_norm_stats(train: SequenceSet, keypoints: str = "h36m",
                       frame_2d: str = "image") -> NormStats:
  """Mean and std over the train split, of the 2D as the model reads it
  (`lifter_inputs.prepare`); joints with no spread, or absent, get mean 0 and std 1."""
  def stats(x):
    with warnings.catch_warnings():  # an absent joint is all NaN: handled just below.
      warnings.simplefilter("ignore", RuntimeWarning)
      mean = np.nanmean(x, axis=0)
      std = np.nanstd(x, axis=0)
    mean = np.nan_to_num(mean)
    std = np.where(np.isnan(std) | (std < 1e-6), 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)
  return NormStats(*stats(lifter_inputs.prepare(train.pose_2d, keypoints, frame_2d)),
                   *stats(train.pose_3d))


def normalise(x, mean, std):
  return (x - mean) / std


def denormalise(x, mean, std):
  return x * std + mean


class _BatchGather:
  """Maps a global batch number to a batch dict; pure given (seed, number)."""

  def __init__(self, data: SequenceSet, stats: NormStats, frame_ids: np.ndarray,
               batch_size: int, seed: int, shuffle: bool, flip: bool,
               offsets: np.ndarray | None, indices_only: bool = False, shard_index: int = 0):
    self.data, self.stats, self.frame_ids = data, stats, frame_ids
    self.batch_size, self.seed, self.shuffle, self.flip = batch_size, seed, shuffle, flip
    self.indices_only = indices_only
    self.offsets, self.shard_index = offsets, shard_index
    self.batches_per_epoch = -(-len(frame_ids) // batch_size) if not shuffle else (
        len(frame_ids) // batch_size)

  @functools.lru_cache(maxsize=2)
  def _epoch_order(self, epoch: int) -> np.ndarray:
    if not self.shuffle:
      return self.frame_ids
    return np.random.default_rng([self.seed, epoch]).permutation(self.frame_ids)

  def __call__(self, number: int) -> dict[str, np.ndarray]:
    # Training wraps into the next epoch; evaluation numbers past the shard's last batch
    # are all-padding batches (see make_dataset).
    epoch, b = divmod(int(number), self.batches_per_epoch) if self.shuffle else (0, int(number))
    order = self._epoch_order(epoch)
    ids = order[b * self.batch_size:(b + 1) * self.batch_size]
    valid = np.ones(self.batch_size, bool)
    if ids.shape[0] < self.batch_size:  # final eval batches: pad by repeating, mark invalid.
      valid[ids.shape[0]:] = False
      ids = np.concatenate([ids, np.full(self.batch_size - ids.shape[0], order[-1])])
    d = self.data
    seq = d.seq_index[ids]
    # The shard (process) is part of the flip stream: hosts must not mirror alike.
    do_flip = (np.random.default_rng([self.seed, 1, int(number), self.shard_index])
               .random(self.batch_size) < 0.5 if self.flip else np.zeros(self.batch_size, bool))
    if self.indices_only:  # device-resident data: the step gathers (and flips) on device.
      return {"frame_id": ids.astype(np.int32), "flip": do_flip, "seq_index": seq.astype(np.int32),
              "frame_index": d.frame_index[ids], "valid": valid}
    if self.offsets is None:
      pose_2d = d.pose_2d[ids]
    else:
      first = d.starts[seq]
      pose_2d = d.pose_2d[windows.window_index(ids, self.offsets, first,
                                               first + d.lengths[seq] - 1)]
    pose_3d = d.pose_3d[ids]
    if self.flip:  # the device's mirror, run on the host's CPU: no accelerator round trip.
      with jax.default_device(jax.local_devices(backend="cpu")[0]):
        pose_2d = np.asarray(skeleton.mirror(pose_2d, d.camera_c[seq, 0], do_flip))
        pose_3d = np.asarray(skeleton.mirror(pose_3d, where=do_flip))
    camera_up = np.where(do_flip[:, None], d.camera_up[seq] * np.array([-1.0, 1.0, 1.0]),
                         d.camera_up[seq])  # a flip mirrors the camera frame's x too
    s = self.stats
    return {
        "pose_2d": pose_2d,
        "pose_3d": pose_3d,
        "pose_3d_norm": normalise(pose_3d, s.mean_3d, s.std_3d),
        "seq_index": seq.astype(np.int32),
        "frame_index": d.frame_index[ids],
        "valid": valid,
        "camera_f": d.camera_f[seq],
        "camera_c": d.camera_c[seq],
        "camera_up": camera_up.astype(np.float32),
        "root_depth": d.root_depth[ids],
    }


def make_dataset(data: SequenceSet, stats: NormStats, batch_size: int, *, seed: int = 0,
                 train: bool = True, flip: bool = False, window: int | None = None,
                 causal: bool = False, shard_index: int | None = None,
                 shard_count: int | None = None, frame_stride: int = 1,
                 indices_only: bool = False) -> grain.MapDataset:
  """A grain MapDataset of batch dicts.

  train=True: shuffled anew each epoch from `seed`, repeats forever, full batches.
  train=False: every frame once in order; the last batch is padded (see `valid`), and
  every shard yields as many batches as the largest (all-padding ones where needed), so
  processes that evaluate together run their collectives in step.
  `window` (with `causal`) gives each frame its 2D receptive field, as the TCN reads it.
  Frames are sharded per process (default: this JAX process), so each host reads its
  own part of the global batch; `batch_size` is the per-process batch. `frame_stride`
  keeps every n-th frame (quick evaluations during training). `indices_only` yields
  just frame ids and flip flags, for data kept on the device (`jpose.data.resident`).
  """
  shard_index = jax.process_index() if shard_index is None else shard_index
  shard_count = jax.process_count() if shard_count is None else shard_count
  all_ids = np.arange(data.num_frames)[::frame_stride]
  frame_ids = all_ids[shard_index::shard_count]
  if train and len(frame_ids) < batch_size:
    raise ValueError(f"train.batch_size {batch_size} is larger than the {len(frame_ids)} "
                     "frames of this split")
  offsets = None if window is None else windows.window_offsets(window, causal)
  gather = _BatchGather(data, stats, frame_ids, batch_size, seed, shuffle=train,
                        flip=flip and train, offsets=offsets, indices_only=indices_only,
                        shard_index=shard_index)
  largest_shard = -(-len(all_ids) // shard_count)
  num_batches = (gather.batches_per_epoch * 10**9 if train
                 else -(-largest_shard // batch_size))
  return grain.MapDataset.range(num_batches).map(gather)


def make_iterator(dataset: grain.MapDataset, prefetch: int = 2) -> grain.DatasetIterator:
  """An iterator whose position can be saved (`get_state`) and restored (`set_state`)."""
  options = grain.ReadOptions(num_threads=1 if prefetch else 0, prefetch_buffer_size=prefetch)
  return iter(dataset.to_iter_dataset(read_options=options))
