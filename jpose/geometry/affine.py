"""2D pixel affines: a (2, 3) matrix A, or its (3, 3) homogeneous form with bottom row
(0, 0, 1), maps points as [x', y'] = A @ [x, y, 1]. Crops (original pixels -> crop
pixels), augmentations and the detector's ROIs are all such maps.
"""

from __future__ import annotations

import numpy as np


def apply_affine(affine, points):
  """(2, 3) or (3, 3) affine, (..., 2) points -> (..., 2) mapped points; a point with a NaN
  coordinate (an absent joint) maps to NaN.

  Written with operators only, so it keeps its inputs' array type: numpy in, numpy out
  (float64 stays float64 on the host, where builders and the detector use it), jax in,
  jax out (traceable under jit).
  """
  return points @ affine[:2, :2].T + affine[:2, 2]


# The inverse as array products, so numpy and jax arrays both keep their type:
# adj(A) = A[rows, cols] * signs for a 2x2 A, and the (2, 3) and (3, 3) results are built
# by multiplying with fixed 0/1 matrices instead of concatenating.
_ADJUGATE_ROWS = np.array([[1, 0], [1, 0]])
_ADJUGATE_COLS = np.array([[1, 1], [0, 0]])
_ADJUGATE_SIGNS = np.array([[1.0, -1.0], [-1.0, 1.0]])
_LINEAR_PART = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # (2, 2) @ this -> (2, 3)
_SHIFT_PART = np.array([[0.0, 0.0, 1.0]])  # (2, 1) * this -> (2, 3), in the last column
_TOP_ROWS = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # this @ (2, 3) -> (3, 3)
_BOTTOM_ROW = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def invert_affine(affine):
  """(2, 3) or (3, 3) affine -> its inverse, of the same shape (a (3, 3) one keeps its
  bottom row (0, 0, 1)). Like apply_affine, numpy in, numpy out (float64 stays float64),
  jax in, jax out."""
  linear, shift = affine[:2, :2], affine[:2, 2:]
  determinant = linear[0, 0] * linear[1, 1] - linear[0, 1] * linear[1, 0]
  inverse_linear = linear[_ADJUGATE_ROWS, _ADJUGATE_COLS] * _ADJUGATE_SIGNS / determinant
  inverse = inverse_linear @ _LINEAR_PART + (-inverse_linear @ shift) * _SHIFT_PART
  if affine.shape[0] == 2:
    return inverse
  return _TOP_ROWS @ inverse + _BOTTOM_ROW
