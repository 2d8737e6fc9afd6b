"""Scale-free 2D/3D pose units for lifting without 3D labels (Drover et al. 2018, Chen
et al. 2019), plus rotation about the vertical axis and orthographic or pinhole
reprojection.

2D: p = ((u - c) / f - root) / s, without the root, where s is the pose's RMS distance
from the root, so every 2D pose has unit scale. 3D in the same units:
Q = (P - P_root) / (Z_root * s). Under weak perspective Q's x, y equal p, which is what
lets a lifter learn 3D from 2D alone.
"""

from __future__ import annotations

import jax.numpy as jnp


def normalise_2d(pose_2d, focal, principal):
  """(..., 17, 2) pixels -> ((..., 16, 2) unit-scale root-relative 2D, scale (...))."""
  xy = (pose_2d - principal[..., None, :]) / focal[..., None, :]
  xy = xy[..., 1:, :] - xy[..., :1, :]
  scale = rms_radius(xy)
  return xy / scale[..., None, None], scale


def normalise_3d(pose_3d_mm, root_depth, scale_2d):
  """(..., 17, 3) root-centred mm -> (..., 16, 3) in the units of `normalise_2d`."""
  return pose_3d_mm[..., 1:, :] / (root_depth * scale_2d)[..., None, None]


def to_mm(pose, root_depth, scale_2d):
  """(..., 16, 3) normalised -> (..., 17, 3) root-relative mm, with the root at 0."""
  mm = pose * (root_depth * scale_2d)[..., None, None]
  return jnp.concatenate([jnp.zeros_like(mm[..., :1, :]), mm], axis=-2)


def rotate_about_axis(pose, axis, angle):
  """Rotates (..., J, 3) poses by `angle` (...) about the unit `axis` (..., 3) through the
  root (origin), right-handed (Rodrigues' formula)."""
  k = axis[..., None, :]
  c, s = jnp.cos(angle)[..., None, None], jnp.sin(angle)[..., None, None]
  return (pose * c + jnp.cross(jnp.broadcast_to(k, pose.shape), pose) * s
          + k * jnp.sum(k * pose, axis=-1, keepdims=True) * (1.0 - c))


def rotate_about_vertical(pose, angle):
  """Rotates (..., J, 3) camera-frame poses by `angle` (...) about the camera's y axis
  (image down, i.e. the vertical of an upright camera), around the root (origin)."""
  axis = jnp.broadcast_to(jnp.asarray([0.0, 1.0, 0.0], pose.dtype), pose.shape[:-2] + (3,))
  return rotate_about_axis(pose, axis, angle)


def project(pose):
  """Orthographic projection of normalised 3D to normalised 2D: (..., J, 3) -> (..., J, 2)."""
  return pose[..., :2]


def perspective(pose, scale_2d, root_xy):
  """Pinhole projection of normalised 3D to the normalised 2D of `normalise_2d` (before
  its unit scaling, i.e. in units of `scale_2d`): (..., J, 3) -> (..., J, 2).

  With Q = (P - P_root) / (Z_root s) and the root at normalised image point r, a joint
  lands at (u - r) / s = (Q_xy - r Q_z) / (1 + s Q_z): exact for an undistorted camera.
  Unlike `project` it tells a pose from its depth mirror image (near joints spread out),
  which orthographic views of randomly rotated poses cannot: the mirror image rotated by
  theta projects exactly as the pose rotated by -theta does.
  """
  s = scale_2d[..., None, None]
  z = pose[..., 2:3]
  return (pose[..., :2] - root_xy[..., None, :] * z) / jnp.maximum(1.0 + s * z, 0.1)


def root_image_point(pose_2d, focal, principal):
  """(..., 17, 2) pixels -> (..., 2) the root joint's normalised image point ((u - c) / f)."""
  return (pose_2d[..., 0, :] - principal) / focal


def unit_scale(pose_2d):
  """Rescales (..., J, 2) root-relative 2D to unit RMS radius, as `normalise_2d` does."""
  return pose_2d / rms_radius(pose_2d)[..., None, None]


def rms_radius(pose_2d):
  # The epsilon sits inside the root: sqrt'(0) is infinite, and a lifter that starts at
  # the all-zero pose (as the VAE decoder does) would get NaN gradients.
  return jnp.sqrt(jnp.mean(jnp.sum(pose_2d**2, axis=-1), axis=-1) + 1e-12)


def project_hmr(points, camera):
  """HMR's weak-perspective projection: (..., N, 3) points and (..., 3) camera
  (s, tx, ty) -> (..., N, 2) s (X_xy + t), normalised crop coordinates in [-1, 1]
  (`jpose.render.mesh.WeakPerspective` draws with the same camera)."""
  scale, translation = camera[..., :1, None], camera[..., None, 1:3]
  return scale * (points[..., :2] + translation)
