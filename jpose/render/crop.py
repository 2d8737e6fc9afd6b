"""Square crops around a person and the pixel affine that maps an image into them.

A crop is a (2, 3) affine A taking original-image pixels to crop pixels,
[x_c, y_c] = A @ [x, y, 1] (pixel centres at +0.5, see the image conventions). The
renderer casts rays for crop pixels through A's inverse, so it renders directly at the
crop, for any affine (scale, shift, or an augmentation's rotation composed into it).
`jpose.geometry.affine` applies and inverts such affines.
"""

from __future__ import annotations

import jax.numpy as jnp

from jpose.geometry import camera as camera_lib


def box_around(points_2d, margin: float = 1.3):
  """(J, 2) pixels -> the square box around them: centre (2,) and side (), in pixels.

  The side is `margin` times the larger side of the points' bounding box.
  """
  lo = jnp.min(points_2d, axis=0)
  hi = jnp.max(points_2d, axis=0)
  return 0.5 * (lo + hi), margin * jnp.max(hi - lo)


def box_affine(centre, side, size: int):
  """Square box (centre (2,), side ()) in original pixels -> (2, 3) affine onto a
  size x size crop (the box's edges land on the crop's edges)."""
  scale = size / side
  shift = 0.5 * size - scale * centre
  return jnp.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])


def project_pinhole(points_camera, focal, principal):
  """(..., 3) camera-frame points, (2,) focal, (2,) principal point -> (..., 2) pixels
  with no lens distortion: the camera the renderer casts its rays through."""
  pinhole = camera_lib.Camera(R=jnp.eye(3), T=jnp.zeros(3), f=focal, c=principal,
                              k=jnp.zeros(3), p=jnp.zeros(2))
  return camera_lib.project_to_image(points_camera, pinhole, distort=False)
