"""What a lifter reads of a 2D pose: which joints (`data.keypoints`) and in which frame
(`data.frame_2d`), plus the train-time corruptions (noise, missing joints) that make it
robust to a real detector. Training, evaluation, `jpose.infer` and `jpose.export` all
pass 2D poses through `prepare`, so a model always sees its inputs the same way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import skeleton

# data.keypoints -> the Human3.6M-17 joints a model reads; the others are absent (NaN,
# then 0 once normalised). "coco": the 13 joints a COCO-17 detector gives (its Nose is
# Human3.6M's Neck/Nose); COCO has no pelvis, spine, thorax or head top, and its eyes
# and ears have no Human3.6M counterpart, so those are never read.
KEYPOINT_SETS = {
    "h36m": tuple(range(17)),
    "coco": tuple(j for j, source in enumerate(skeleton.COCO_17_TO_H36M_17) if source >= 0),
}
# data.frame_2d: "image" (pixels as the camera gives them: Martinez et al., VideoPose3D)
# or "pose" (centred on the hips' midpoint and scaled to unit RMS radius, per frame: the
# model never sees where the person stands or how large they are in the picture, so any
# camera and resolution give it the same input).
FRAMES_2D = ("image", "pose")
_HIPS = (1, 4)  # RHip and LHip: every keypoint set has both.


def select(pose_2d, keypoints: str):
  """(..., 17, 2) -> the same with joints outside KEYPOINT_SETS[keypoints] set to NaN."""
  xp = jnp if isinstance(pose_2d, jax.Array) else np
  kept = np.zeros(17, bool)
  kept[list(KEYPOINT_SETS[keypoints])] = True
  return xp.where(kept[:, None], pose_2d, xp.nan)


def to_pose_frame(pose_2d):
  """(..., 17, 2) -> centred on the hips' midpoint, divided by the RMS distance of the
  present (non-NaN) joints from it. A pose without both hips comes out all NaN."""
  xp = jnp if isinstance(pose_2d, jax.Array) else np
  centre = (pose_2d[..., _HIPS[0], :] + pose_2d[..., _HIPS[1], :]) / 2
  centred = pose_2d - centre[..., None, :]
  squared = xp.sum(centred**2, axis=-1)
  present = ~xp.isnan(squared)
  mean_square = (xp.sum(xp.where(present, squared, 0.0), axis=-1)
                 / xp.maximum(xp.sum(present, axis=-1), 1))
  return centred / xp.sqrt(mean_square + 1e-12)[..., None, None]


def prepare(pose_2d, keypoints: str = "h36m", frame_2d: str = "image"):
  """(..., 17, 2) pixels -> the coordinates a model normalises: the config's joints, in
  its frame. NaN marks an absent joint throughout."""
  pose_2d = select(pose_2d, keypoints) if keypoints != "h36m" else pose_2d
  return to_pose_frame(pose_2d) if frame_2d == "pose" else pose_2d


def lifter_joints(keypoints: str) -> tuple[int, ...]:
  """The joints in a frame-wise lifter's input vector. With "h36m", all but Neck/Nose,
  which the Stacked Hourglass (MPII-16) detections lack, as Martinez et al. do."""
  if keypoints == "h36m":
    return tuple(j for j in range(17) if j != skeleton.NECK_NOSE)
  return KEYPOINT_SETS[keypoints]


def corrupt(x: jax.Array, key: jax.Array, noise: float, joint_dropout: float) -> jax.Array:
  """Train-time corruption of normalised (..., 17, F) inputs: Gaussian noise of sigma
  `noise` on every value, then each joint of each frame dropped (set to 0, as an absent
  joint reads) with probability `joint_dropout`, as a detector misses joints."""
  if noise:
    x = x + noise * jax.random.normal(jax.random.fold_in(key, 0), x.shape)
  if joint_dropout:
    dropped = jax.random.bernoulli(jax.random.fold_in(key, 2), joint_dropout, x.shape[:-1])
    x = jnp.where(dropped[..., None], 0.0, x)
  return x
