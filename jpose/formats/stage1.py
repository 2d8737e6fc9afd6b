"""A first stage's per-frame predictions, stored for the TCN to read: Kato et al.'s
two-stage video model, whose per-frame image model gives 2D pose and joint depth.

`python -m jpose.predict` writes `<dir>/<split>.npz` (one row per frame of every
sequence, in `pipeline.load_split`'s order) and `<dir>/metadata.json`; a TCN config with
data.input_2d="stage1" and data.stage1_dir=<dir> reads them through `attach`.
`record_rows` lays recorded video frames (`h36m_images` records) out in that order.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Iterable

from absl import logging
import numpy as np

from jpose.formats import h36m_video_files

METADATA = "metadata.json"


def sequence_keys(data) -> list[str]:
  """'subject/action/camera' of each sequence of a SequenceSet."""
  return [f"{s}/{a}/{c}" for s, a, c in zip(data.subjects, data.actions, data.cameras)]


def record_rows(image_ids: Iterable[str], data, frame_stride: int, build_stride: int,
                source: str) -> np.ndarray:
  """(N,) the position in `image_ids` (h36m_images records of every `build_stride`-th video
  frame, in any order) of each frame of `data`, a SequenceSet that `pipeline.load_split`
  read with `frame_stride` from the `h36m` dataset. `source` names the records in errors.

  Row k of a sequence is its video frame k * frame_stride: load_split keeps every
  frame of the ground truth 2D it is read with, so it drops none. Every frame must have
  its record; a missing or short sequence is an error, never padded.
  """
  if frame_stride % build_stride:
    raise ValueError(f"{source}: records of every {build_stride}-th video frame cannot give "
                     f"frame_stride {frame_stride}, which is not a multiple of "
                     f"{build_stride}; build h36m_images/stride1 for any frame stride")
  frames: dict[str, dict[int, int]] = {}  # sequence key -> {row: position in image_ids}
  for position, image_id in enumerate(image_ids):
    subject, action, camera, t = h36m_video_files.parse_frame_id(image_id)
    if t % frame_stride == 0:
      frames.setdefault(f"{subject}/{action}/{camera}", {})[t // frame_stride] = position
  rows = []
  for key, length in zip(sequence_keys(data), data.lengths):
    found = frames.get(key, {})
    if sorted(found) != list(range(length)):
      raise ValueError(f"{source}: sequence {key} has {len(found)} recorded frames at "
                       f"frame_stride {frame_stride}, the dataset {length}"
                       + ("" if found else " (no records at all)")
                       + f"; the records must hold its frames 0, {frame_stride}, ... "
                       f"{(length - 1) * frame_stride} (the h36m_images build lists the "
                       "videos it missed or found short in its metadata)")
    rows.append([found[k] for k in range(length)])
  return np.concatenate(rows).astype(np.int64)


def unusable_sequences(build_metadata) -> dict[str, str]:
  """Sequence key -> why, for each video an h36m_images build listed as missing,
  unreadable or short (Human3.6M's own S11 'Directions' on camera 54138969 is corrupt):
  the sequences `jpose.predict` leaves out, and says so."""
  out = {}
  for field in ("missing_files", "unreadable_files", "short_videos"):
    for note in build_metadata.get(field, ()):
      key = h36m_video_files.video_sequence(str(note))
      if key:
        out.setdefault(key, f"{field}: {note}")
  return out


def write(out_dir: str, split: str, data, pose_2d: np.ndarray, depth: np.ndarray,
          pose_3d: np.ndarray, metadata: dict) -> str:
  """Stores one split's predictions for the frames of `data` (a SequenceSet): (N, 17, 2)
  image pixels, (N, 17) root-relative depth in mm, and (N, 17, 3) the root-relative camera
  coordinates they make with the true root depth. The file is replaced only once the new
  one is complete; metadata.json keeps every split's entry."""
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, f"{split}.npz")
  tmp = path + ".tmp.npz"
  np.savez(tmp, pose_2d=pose_2d.astype(np.float32), depth=depth.astype(np.float32),
           pose_3d=pose_3d.astype(np.float32), sequences=np.asarray(sequence_keys(data)),
           lengths=np.asarray(data.lengths, np.int64))
  os.replace(tmp, path)
  meta_path = os.path.join(out_dir, METADATA)
  meta = read_metadata(out_dir) if os.path.isfile(meta_path) else {}
  meta[split] = metadata
  with open(meta_path + ".tmp", "w") as f:
    json.dump(meta, f, indent=2)
  os.replace(meta_path + ".tmp", meta_path)
  return path


def read_metadata(stage1_dir: str) -> dict:
  path = os.path.join(stage1_dir, METADATA)
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise FileNotFoundError(f"{path}: no stage-1 predictions here; write them with "
                            "python -m jpose.predict --workdir <integral run>") from None
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not JSON ({e}); run python -m jpose.predict again") from e


def attach(data, stage1_dir: str, split: str, frame_stride: int):
  """`data` (a SequenceSet of ground truth) with its 2D input and input depth replaced by
  the stage-1 predictions for the same sequences and frames. Sequences that predict left
  out (metadata 'skipped_sequences': their videos were unusable) are dropped, with a
  warning that names them."""
  if not stage1_dir:
    raise ValueError("config.data.stage1_dir: data.input_2d='stage1' needs the folder "
                     "python -m jpose.predict wrote")
  meta = read_metadata(stage1_dir)
  path = os.path.join(stage1_dir, f"{split}.npz")
  if split not in meta or not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no stage-1 predictions for split '{split}' (there are "
                            f"{sorted(meta)}); run python -m jpose.predict --splits {split}")
  if meta[split]["frame_stride"] != frame_stride:
    raise ValueError(f"{path}: predicted at frame_stride {meta[split]['frame_stride']}, but "
                     f"config.data.frame_stride is {frame_stride}; they must match")
  skipped = meta[split].get("skipped_sequences", {})
  if skipped:
    keep = [s for s, key in enumerate(sequence_keys(data)) if key not in skipped]
    logging.warning("%s: %d of %d sequences have no stage-1 predictions and are left out "
                    "(their videos were unusable): %s", path, len(data.lengths) - len(keep),
                    len(data.lengths), "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    data = data.select(keep)
  with np.load(path) as f:
    stored = {k: f[k] for k in ("pose_2d", "depth", "sequences", "lengths")}
  starts = np.concatenate([[0], np.cumsum(stored["lengths"])[:-1]])
  rows = {str(k): (int(s), int(n)) for k, s, n in zip(stored["sequences"], starts,
                                                       stored["lengths"])}
  index = []
  for key, length in zip(sequence_keys(data), data.lengths):
    if key not in rows:
      raise ValueError(f"{path}: no predictions for sequence {key}; predict with the same "
                       "data.max_sequences (or more) as this config")
    start, stored_length = rows[key]
    if stored_length != length:
      raise ValueError(f"{path}: sequence {key} has {stored_length} predicted frames, the "
                       f"dataset {length}; predict again from the same dataset")
    index.append(np.arange(start, start + length))
  index = np.concatenate(index)
  return dataclasses.replace(data, pose_2d=stored["pose_2d"][index],
                             input_depth=stored["depth"][index])
