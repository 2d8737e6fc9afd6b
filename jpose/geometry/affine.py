"""2D pixel affines: a (2, 3) matrix A, or its (3, 3) homogeneous form with bottom row
(0, 0, 1), maps points as [x', y'] = A @ [x, y, 1]. Crops (original pixels -> crop
pixels), augmentations and the detector's ROIs are all such maps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def apply_affine(affine, points):
  """(2, 3) or (3, 3) affine, (..., 2) points -> (..., 2) mapped points; a point with a NaN
  coordinate (an absent joint) maps to NaN.

  Written with operators only, so it keeps its inputs' array type: numpy in, numpy out
  (float64 stays float64 on the host, where builders and the detector use it), jax in,
  jax out (traceable under jit).
  """
  return points @ affine[:2, :2].T + affine[:2, 2]


def invert_affine(affine) -> jax.Array:
  """(2, 3) or (3, 3) affine -> its inverse, of the same shape (a (3, 3) one keeps its
  bottom row (0, 0, 1)); in jnp, so float32 unless x64 is on."""
  affine = jnp.asarray(affine)
  linear = jnp.linalg.inv(affine[:2, :2])
  inverse = jnp.concatenate([linear, -linear @ affine[:2, 2:]], axis=1)
  if affine.shape[0] == 2:
    return inverse
  return jnp.concatenate([inverse, jnp.array([[0.0, 0.0, 1.0]], inverse.dtype)], axis=0)
