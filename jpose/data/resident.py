"""A split kept in device memory, and the on-device window gather over it.

Human3.6M's training split (~1.5 M frames x 17 joints x 5 values, about 0.5 GB) fits in
any accelerator's memory, so every trainer keeps it there: the host sends only frame ids
and flip flags each step, and the step gathers its frames (`gather_frames`) or
receptive-field windows (`gather_windows`) and flips them itself. That keeps the host off
the critical path and lets several steps run in one dispatch (`train.steps_per_dispatch`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from jpose.data import pipeline
from jpose.data import windows
from jpose.geometry import skeleton


class ResidentData(NamedTuple):
  """Flat per-frame arrays of one split (a pytree, so it can be a jit argument)."""

  pose_2d: jnp.ndarray  # (N, 17, 2) pixels
  pose_3d: jnp.ndarray  # (N, 17, 3) root-centred camera frame, mm
  first: jnp.ndarray  # (N,) int32 flat index of the frame's sequence start
  last: jnp.ndarray  # (N,) int32 flat index of the frame's sequence end (inclusive)
  root_depth: jnp.ndarray  # (N,) root joint's camera depth, mm
  camera_f: jnp.ndarray  # (N, 2) focal lengths, pixels
  camera_c: jnp.ndarray  # (N, 2) principal points, pixels (flips mirror about c_x)
  camera_up: jnp.ndarray  # (N, 3) the world's up axis in the camera frame
  input_depth: jnp.ndarray  # (N, 17) root-relative depth a depth TCN reads, mm


def from_sequences(data: pipeline.SequenceSet) -> ResidentData:
  """Host arrays for a ResidentData (put them on device with the mesh's sharding)."""
  first = data.starts[data.seq_index].astype(np.int32)
  return ResidentData(
      pose_2d=data.pose_2d.astype(np.float32), pose_3d=data.pose_3d.astype(np.float32),
      first=first, last=(first + data.lengths[data.seq_index] - 1).astype(np.int32),
      root_depth=data.root_depth.astype(np.float32),
      camera_f=data.camera_f[data.seq_index].astype(np.float32),
      camera_c=data.camera_c[data.seq_index].astype(np.float32),
      camera_up=data.camera_up[data.seq_index].astype(np.float32),
      input_depth=input_depth(data).astype(np.float32))


def input_depth(data: pipeline.SequenceSet) -> np.ndarray:
  """(N, 17) the depth input of a depth-reading TCN: a first stage's predictions where the
  split has them (`data.input_depth`), else the ground truth's root-relative depth."""
  return data.pose_3d[..., 2] if data.input_depth is None else data.input_depth


def input_pose_3d(data: pipeline.SequenceSet) -> np.ndarray:
  """(N, 17, 3) the 3D whose z a depth TCN reads (`TemporalTrainer.model_inputs`): the
  truth's x and y, and `input_depth` as z."""
  return np.concatenate([data.pose_3d[..., :2], input_depth(data)[..., None]], axis=-1)


def gather_windows(data: ResidentData, frame_ids, offsets):
  """(B,) frame ids -> (B, L, 17, 2) pixel windows, (B, L, 17, 3) 3D windows and (B, L, 17)
  input-depth windows, with edge replication at sequence boundaries (never reading a
  neighbouring sequence)."""
  index = windows.window_index(frame_ids, jnp.asarray(offsets), data.first[frame_ids],
                               data.last[frame_ids])
  return data.pose_2d[index], data.pose_3d[index], data.input_depth[index]


def gather_frames(data: ResidentData, frame_ids, flip) -> dict[str, jnp.ndarray]:
  """(B,) frame ids and flip flags -> the frames' pose_2d (pixels), pose_3d (mm),
  root_depth, camera_f, camera_c and camera_up, mirrored where flip is set (as the host
  pipeline's `make_dataset(..., flip=True)` batches are)."""
  camera_c = data.camera_c[frame_ids]
  up = data.camera_up[frame_ids]
  return {"pose_2d": skeleton.mirror(data.pose_2d[frame_ids], camera_c[:, 0], flip),
          "pose_3d": skeleton.mirror(data.pose_3d[frame_ids], where=flip),
          "root_depth": data.root_depth[frame_ids], "camera_f": data.camera_f[frame_ids],
          "camera_c": camera_c,
          "camera_up": jnp.where(flip[:, None], up * jnp.asarray([-1.0, 1.0, 1.0]), up)}


def flip_average(predict, pose_2d, pose_3d, principal_x):
  """Flip-test averaging: (predict(2D, 3D) + mirror(predict(mirror(2D), mirror(3D)))) / 2.

  `predict` maps (B, ..., 17, 2) pixels and (B, ..., 17, 3) mm to (B, ..., 17, 3) mm
  predictions; 2D is mirrored about each example's principal_x (B,).
  """
  mirrored = predict(skeleton.mirror(pose_2d, principal_x), skeleton.mirror(pose_3d))
  return (predict(pose_2d, pose_3d) + skeleton.mirror(mirrored)) / 2


def flip_averaged(predict):
  """(state, batch) -> (B, 17, 3) `predict` on a batch of frames, averaged with the prediction for the mirrored 2D and
  3D input (mirrored back): the flip test of models that read poses. Image models mirror
  their crops themselves."""
  def averaged(state, batch):
    def run(pose_2d, pose_3d):
      return predict(state, {**batch, "pose_2d": pose_2d, "pose_3d": pose_3d})
    return flip_average(run, batch["pose_2d"], batch["pose_3d"],
                                 batch["camera_c"][:, 0])
  return averaged
