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


def _nanmean(x, axis: int):
  """Mean over `axis` of the non-NaN entries (NaN where there are none), silently."""
  xp = jnp if isinstance(x, jax.Array) else np
  present = ~xp.isnan(x)
  count = xp.sum(present, axis=axis)
  total = xp.sum(xp.where(present, x, 0.0), axis=axis)
  return xp.where(count > 0, total / xp.maximum(count, 1), xp.nan)


def centre(pose_2d):
  """(..., 17, 2) -> (..., 2): the hips' midpoint; where a detector missed a hip, the
  other hip; where it missed both, the mean of the joints it has (NaN: no joint)."""
  xp = jnp if isinstance(pose_2d, jax.Array) else np
  hips = _nanmean(pose_2d[..., _HIPS, :], axis=-2)
  return xp.where(xp.isnan(hips), _nanmean(pose_2d, axis=-2), hips)


def to_pose_frame(pose_2d):
  """(..., 17, 2) -> centred (`centre`), divided by the RMS distance of the present
  (non-NaN) joints from the centre. Absent joints stay NaN."""
  xp = jnp if isinstance(pose_2d, jax.Array) else np
  centred = pose_2d - centre(pose_2d)[..., None, :]
  mean_square = _nanmean(xp.sum(centred**2, axis=-1), axis=-1)
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


def drop_joints(pose_2d: jax.Array, key: jax.Array, probability: float) -> jax.Array:
  """Train-time: each joint of each (..., 17, 2) pixel pose becomes absent (NaN) with
  `probability`, as a detector misses joints. It acts on pixels, before `prepare`, so a
  missing hip moves the centre and scale in training exactly as it does at inference."""
  dropped = jax.random.bernoulli(jax.random.fold_in(key, 2), probability, pose_2d.shape[:-1])
  return jnp.where(dropped[..., None], jnp.nan, pose_2d)


def add_noise(x: jax.Array, key: jax.Array, sigma: float) -> jax.Array:
  """Train-time Gaussian noise of `sigma` on normalised inputs."""
  return x + sigma * jax.random.normal(jax.random.fold_in(key, 0), x.shape)
