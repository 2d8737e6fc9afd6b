"""Joint layouts used by jpose and the index maps between them.

Everything downstream of the datasets works on the 17-joint Human3.6M subset. The other
layouts (Stacked Hourglass / MPII-16 detections, MPII annotations, LSP-14, COCO-17) map onto it with `convert_joints`;
joints a layout lacks come out as NaN so no value is ever silently invented.
"""

from __future__ import annotations

import dataclasses

import jax
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

# The Stacked Hourglass detections' 16 joints as Martinez et al. name them (their h36m.zip):
# MPII's order, with MPII's thorax called "Spine" and its upper neck "Thorax".
MPII_16 = Skeleton(
    name="mpii_16",
    joint_names=("RAnkle", "RKnee", "RHip", "LHip", "LKnee", "LAnkle", "Pelvis", "Spine",
                 "Thorax", "Head", "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow",
                 "LWrist"),
    parents=(1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 8, 8, 13, 14),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
)

# MPII Human Pose's own annotation layout (Andriluka et al. 2014, mmpose's JSON order).
MPII_ANNOTATION_16 = Skeleton(
    name="mpii_annotation_16",
    joint_names=("RAnkle", "RKnee", "RHip", "LHip", "LKnee", "LAnkle", "Pelvis", "MpiiThorax",
                 "UpperNeck", "HeadTop", "RWrist", "RElbow", "RShoulder", "LShoulder",
                 "LElbow", "LWrist"),
    parents=MPII_16.parents,
    flip_pairs=MPII_16.flip_pairs,
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
# Stacked Hourglass detections (Martinez et al.'s convention): a lifter learns whatever the
# detector calls each joint, so MPII's thorax may stand in for H36M's spine here.
MPII_16_TO_H36M_17 = (6, 2, 1, 0, 3, 4, 5, 7, 8, -1, 9, 13, 14, 15, 12, 11, 10)
# MPII annotations (Sun et al.'s `s_mpii_2_hm36_jt`, integral-human-pose's hm36.py): H36M's
# spine is absent, its thorax is MPII's upper neck and its head MPII's head top. MPII's
# thorax sits at the shoulders' midpoint, where H36M's spine does not: on Human3.6M ground
# truth the spine is 197 mm from the shoulders' midpoint, 0.41 of the way to the hips.
MPII_ANNOTATION_TO_H36M_17 = (6, 2, 1, 0, 3, 4, 5, -1, 8, -1, 9, 13, 14, 15, 12, 11, 10)
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
  """Swaps left and right joint labels of (..., J, D) joints (no coordinate change): an
  index, so numpy joints stay numpy and jax joints jax. `mirror` also mirrors x."""
  return joints[..., np.asarray(skeleton.flip_permutation), :]


def mirror(joints, centre_x=0.0, where=True, skeleton: Skeleton = H36M_17) -> jax.Array:
  """Mirror images of (..., J, D) joints about the vertical line x = centre_x: x becomes
  2 centre_x - x, the other coordinates stay, and left and right labels swap. Poses where
  `where` is False come back unchanged.

  centre_x and where broadcast along the joints' leading axes: a scalar, or (B,) with one
  value per example of (B, ...) poses. Pixel poses mirror about the principal point's x,
  camera-frame poses about 0 (x -> -x). jnp; numpy joints come back as a jax array.
  """
  joints = jnp.asarray(joints)

  def per_pose(value):  # (B,) -> (B, 1, ..., 1): one value per example.
    value = jnp.asarray(value)
    return value.reshape(value.shape + (1,) * (joints.ndim - value.ndim))

  mirrored = jnp.concatenate([2 * per_pose(centre_x) - joints[..., :1], joints[..., 1:]],
                             axis=-1)
  return jnp.where(per_pose(where), flip_left_right(mirrored, skeleton), joints)


def bone_lengths(joints, skeleton: Skeleton = H36M_17, epsilon: float = 0.0):
  """(..., J, 3) joints -> (..., num_bones) bone lengths, in the skeleton's bone order.
  sqrt(|bone|^2 + epsilon): a positive epsilon keeps the gradient finite at length 0."""
  xp = jnp if isinstance(joints, jnp.ndarray) else np
  parent = np.array([p for p, _ in skeleton.bones])
  child = np.array([c for _, c in skeleton.bones])
  bones = joints[..., child, :] - joints[..., parent, :]
  return xp.sqrt(xp.sum(bones**2, axis=-1) + epsilon)


# For each COCO-17 joint, its index in other detectors' layouts (all 17 are present).
# OpenPose BODY_25: 0 Nose, 1 Neck, 2-4 right arm, 5-7 left arm, 8 MidHip, 9-11 right
# leg, 12-14 left leg, 15 REye, 16 LEye, 17 REar, 18 LEar, 19-24 feet (OpenPose's
# doc/02_output.md, POSE_BODY_25_BODY_PARTS).
OPENPOSE_BODY_25_TO_COCO_17 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
# OpenPose COCO-18: as BODY_25 without MidHip, so the legs and face move down by one.
OPENPOSE_COCO_18_TO_COCO_17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
# MediaPipe BlazePose's 33 landmarks; its "left" is the person's left, as COCO's.
BLAZEPOSE_33_TO_COCO_17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

# Human3.6M's head top lies on the line from the thorax through the Neck/Nose joint, at
# k times the thorax-to-nose distance. Least squares over the ground-truth 2D of all 7
# subjects (every 10th frame of every sequence, 4 cameras: 199,548 poses, 3D projected
# through cameras.h5) gives k = 1.634, leaving a mean 19.8 px (median 18.7 px) head error
# against a mean head-to-thorax length of 39 px: the head tilts off that line. On the
# same frames, hip = mean of the two hips is off by 0.27 px (max 1.6: H36M's pelvis is the
# hips' midpoint in 3D), thorax = mean of the shoulders by 12.2 px, spine = midpoint of
# pelvis and thorax by 6.3 px (7.5 px with the derived pelvis and thorax), and the head
# from the derived thorax by 16.0 px (median 14.7; refitting k on the derived thorax,
# 1.562, gains nothing: 16.1 px). COCO's nose is not quite H36M's Neck/Nose joint, so on
# detector output the head is rougher still.
H36M_HEAD_FROM_THORAX_NOSE = 1.634


def h36m_from_coco(points):
  """(..., 17, D) COCO-17 -> (..., 17, D) Human3.6M-17, deriving the 4 joints COCO lacks.

  D is 2 (x, y) or 3 (x, y, confidence). The 13 shared joints are copied (H36M's
  Neck/Nose takes COCO's nose); pelvis = mean of the hips, thorax = mean of the
  shoulders, spine = midpoint of pelvis and thorax, head top = thorax + k (nose - thorax)
  with `H36M_HEAD_FROM_THORAX_NOSE` (measured errors above). A derived joint's confidence
  is the lowest of its sources'; it is NaN where any source is NaN. Works on numpy and
  jax arrays alike.
  """
  xp = jnp if isinstance(points, jnp.ndarray) else np
  out = convert_joints(points, COCO_17_TO_H36M_17)
  names = COCO_17.joint_names
  coco = {name: points[..., names.index(name), :] for name in
          ("Nose", "LShoulder", "RShoulder", "LHip", "RHip")}

  def combine(a, b, weight_b: float):
    xy = (1.0 - weight_b) * a[..., :2] + weight_b * b[..., :2]
    if points.shape[-1] == 2:
      return xy
    return xp.concatenate([xy, xp.minimum(a[..., 2:], b[..., 2:])], axis=-1)

  pelvis = combine(coco["LHip"], coco["RHip"], 0.5)
  thorax = combine(coco["LShoulder"], coco["RShoulder"], 0.5)
  derived = {
      "Hip": pelvis,
      "Spine": combine(pelvis, thorax, 0.5),
      "Thorax": thorax,
      "Head": combine(thorax, coco["Nose"], H36M_HEAD_FROM_THORAX_NOSE),
  }
  index = np.arange(H36M_17.num_joints)
  for name, value in derived.items():
    is_joint = (index == H36M_17.joint_names.index(name))[:, None]
    out = xp.where(is_joint, value[..., None, :], out)
  return out
