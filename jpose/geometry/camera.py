"""Pinhole cameras with Human3.6M's radial (k1..k3) and tangential (p1, p2) distortion.

`Camera.R` is the world-to-camera rotation and `Camera.T` the camera centre in world
coordinates (mm), so x_cam = R (x_world - T). Functions take one camera and points of
shape (..., 3); vmap them for batches of cameras.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class Camera(NamedTuple):
  """Camera parameters; a NamedTuple so it is a pytree that jit and vmap accept."""

  R: jnp.ndarray  # (3, 3) world-to-camera rotation.
  T: jnp.ndarray  # (3,) camera centre in world coordinates, mm.
  f: jnp.ndarray  # (2,) focal lengths, pixels.
  c: jnp.ndarray  # (2,) principal point, pixels.
  k: jnp.ndarray  # (3,) radial distortion.
  p: jnp.ndarray  # (2,) tangential distortion.


def world_to_camera(points_world, camera: Camera):
  """(..., 3) world points (mm) -> (..., 3) camera-frame points (mm)."""
  return jnp.einsum("ij,...j->...i", camera.R, points_world - camera.T)


def camera_to_world(points_camera, camera: Camera):
  """(..., 3) camera-frame points (mm) -> (..., 3) world points (mm)."""
  return jnp.einsum("ji,...j->...i", camera.R, points_camera) + camera.T


def project_to_image(points_camera, camera: Camera, distort: bool = True):
  """(..., 3) camera-frame points -> (..., 2) pixel coordinates.

  The distortion model is the one Human3.6M's calibration was fitted with (and that
  Martinez et al. use): radial 1 + k1 r^2 + k2 r^4 + k3 r^6 and a tangential term.
  """
  xy = points_camera[..., :2] / points_camera[..., 2:3]
  if distort:
    r2 = jnp.sum(xy**2, axis=-1, keepdims=True)
    radial = 1.0 + camera.k[0] * r2 + camera.k[1] * r2**2 + camera.k[2] * r2**3
    tangential = camera.p[0] * xy[..., 1:2] + camera.p[1] * xy[..., 0:1]
    xy = xy * (radial + tangential) + r2 * camera.p[::-1]
  return xy * camera.f + camera.c


def project_world_to_image(points_world, camera: Camera, distort: bool = True):
  """(..., 3) world points -> (..., 2) pixels."""
  return project_to_image(world_to_camera(points_world, camera), camera, distort)
