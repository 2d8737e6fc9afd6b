"""Pixel affines: applied by hand, inverted in both shapes, and host arrays kept host."""

import jax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import affine as affine_lib

# Scale by 2, shift by (10, -4): (1, 3) -> (12, 2).
SCALE_SHIFT = np.array([[2.0, 0.0, 10.0], [0.0, 2.0, -4.0]])


def test_apply_by_hand_keeps_nan_and_the_array_type():
  points = np.array([[1.0, 3.0], [np.nan, 0.0]])
  mapped = affine_lib.apply_affine(SCALE_SHIFT, points)
  assert isinstance(mapped, np.ndarray) and mapped.dtype == np.float64
  np.testing.assert_array_equal(mapped[0], [12.0, 2.0])
  assert np.isnan(mapped[1]).all()  # an absent joint stays absent.
  homogeneous = np.concatenate([SCALE_SHIFT, [[0.0, 0.0, 1.0]]])
  np.testing.assert_array_equal(affine_lib.apply_affine(homogeneous, points[:1]), [[12.0, 2.0]])
  on_device = jax.jit(affine_lib.apply_affine)(jnp.asarray(SCALE_SHIFT), jnp.asarray(points[:1]))
  assert isinstance(on_device, jax.Array)
  np.testing.assert_array_equal(on_device, [[12.0, 2.0]])


def test_inverse_undoes_a_turned_affine_in_both_shapes():
  c, s = np.cos(0.3), np.sin(0.3)
  turned = np.array([[1.5 * c, -1.5 * s, 40.0], [1.5 * s, 1.5 * c, -7.0]])
  points = np.random.default_rng(0).uniform(0, 256, (20, 2))
  inverse = affine_lib.invert_affine(turned)
  assert inverse.shape == (2, 3)
  back = affine_lib.apply_affine(inverse, affine_lib.apply_affine(turned, points))
  assert inverse.dtype == np.float64  # numpy stays numpy: float64 round trips
  np.testing.assert_allclose(back, points, atol=1e-9)
  on_device = jax.jit(affine_lib.invert_affine)(jnp.asarray(turned, jnp.float32))
  assert isinstance(on_device, jax.Array) and on_device.dtype == jnp.float32
  np.testing.assert_allclose(on_device, inverse, atol=1e-5)
  homogeneous = np.concatenate([turned, [[0.0, 0.0, 1.0]]])
  inverse_3 = affine_lib.invert_affine(homogeneous)
  np.testing.assert_allclose(inverse_3[:2], inverse, atol=1e-6)
  np.testing.assert_array_equal(inverse_3[2], [0.0, 0.0, 1.0])
  np.testing.assert_allclose(inverse_3 @ homogeneous, np.eye(3), atol=1e-5)
