"""Joint layouts used by jpose and the index maps between them.

Everything downstream of the datasets works on the 17-joint Human3.6M subset. The other
layouts (Stacked Hourglass / MPII-16, LSP-14, COCO-17) map onto it with `convert_joints`;
joints a layout lacks come out as NaN so no value is ever silently invented.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Skeleton:
  """A joint layout: names, kinematic parents (-1 for the root) and left/right pairs."""

  name: str
  joint_names: tuple[str, ...]
  parents: tuple[int, ...]
  flip_pairs: tuple[tuple[int, int], ...]

  @property
  def num_joints(self) -> int:
    return len(self.joint_names)

  @property
  def flip_permutation(self) -> np.ndarray:
    """Index array that swaps every left joint with its right twin."""
    perm = np.arange(self.num_joints)
    for a, b in self.flip_pairs:
      perm[a], perm[b] = b, a
    return perm

  @property
  def bones(self) -> tuple[tuple[int, int], ...]:
    """(parent, child) pairs, for drawing and bone-length checks."""
    return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)


H36M_32_NAMES = (
    "Hip", "RHip", "RKnee", "RFoot", "RFootTip", "RToe", "LHip", "LKnee", "LFoot",
    "LFootTip", "LToe", "Spine0", "Spine", "Thorax", "Neck/Nose", "Head", "Thorax2",
    "LShoulder", "LElbow", "LWrist", "LThumb", "LFingers", "LWrist2", "LHand",
    "Thorax3", "RShoulder", "RElbow", "RWrist", "RThumb", "RFingers", "RWrist2", "RHand",
)

# The common 17-joint subset of the 32 joints in the Human3.6M mocap files.
H36M_17_FROM_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

H36M_17 = Skeleton(
    name="h36m_17",
    joint_names=tuple(H36M_32_NAMES[i] for i in H36M_17_FROM_32),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
)
ROOT = 0
NECK_NOSE = 9  # the one H36M-17 joint that 16-joint detectors (MPII order) lack.

MPII_16 = Skeleton(
    name="mpii_16",
    joint_names=("RAnkle", "RKnee", "RHip", "LHip", "LKnee", "LAnkle", "Pelvis", "Spine",
                 "Thorax", "Head", "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow",
                 "LWrist"),
    parents=(1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 8, 8, 13, 14),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
)

LSP_14 = Skeleton(
    name="lsp_14",
    joint_names=("RAnkle", "RKnee", "RHip", "LHip", "LKnee", "LAnkle", "RWrist", "RElbow",
                 "RShoulder", "LShoulder", "LElbow", "LWrist", "Neck", "HeadTop"),
    parents=(1, 2, 12, 12, 3, 4, 7, 8, 12, 12, 9, 10, -1, 12),
    flip_pairs=((0, 5), (1, 4), (2, 3), (6, 11), (7, 10), (8, 9)),
)

COCO_17 = Skeleton(
    name="coco_17",
    joint_names=("Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow",
                 "RElbow", "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle",
                 "RAnkle"),
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

# For each H36M-17 joint, the index of the same joint in the source layout (-1: absent).
MPII_16_TO_H36M_17 = (6, 2, 1, 0, 3, 4, 5, 7, 8, -1, 9, 13, 14, 15, 12, 11, 10)
LSP_14_TO_H36M_17 = (-1, 2, 1, 0, 3, 4, 5, -1, 12, -1, 13, 9, 10, 11, 8, 7, 6)
COCO_17_TO_H36M_17 = (-1, 12, 14, 16, 11, 13, 15, -1, -1, 0, -1, 5, 7, 9, 6, 8, 10)


def convert_joints(joints, source_index: tuple[int, ...]):
  """Reorders (..., J_src, D) joints into a target layout; absent joints become NaN.

  Works on numpy and jax arrays alike (the output has the input's array type).
  """
  index = np.asarray(source_index)
  xp = jnp if isinstance(joints, jnp.ndarray) else np
  gathered = xp.take(joints, np.maximum(index, 0), axis=-2)
  absent = (index < 0)[:, None]
  return xp.where(absent, xp.nan, gathered)


def flip_left_right(joints, skeleton: Skeleton = H36M_17):
  """Swaps left and right joint labels of (..., J, D) joints (no coordinate change)."""
  xp = jnp if isinstance(joints, jnp.ndarray) else np
  return xp.take(joints, skeleton.flip_permutation, axis=-2)


def bone_lengths(joints, skeleton: Skeleton = H36M_17, epsilon: float = 0.0):
  """(..., J, 3) joints -> (..., num_bones) bone lengths, in the skeleton's bone order.
  sqrt(|bone|^2 + epsilon): a positive epsilon keeps the gradient finite at length 0."""
  xp = jnp if isinstance(joints, jnp.ndarray) else np
  parent = np.array([p for p, _ in skeleton.bones])
  child = np.array([c for _, c in skeleton.bones])
  bones = joints[..., child, :] - joints[..., parent, :]
  return xp.sqrt(xp.sum(bones**2, axis=-1) + epsilon)
