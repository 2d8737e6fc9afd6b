"""The HMR hybrid's losses (jpose/losses/hmr.py) on cases whose values are known by hand,
and the exact distance transform against scipy's."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from jpose.body import lbs
from jpose.body import smpl
from jpose.geometry import weak_perspective
from jpose.losses import hmr as hmr_losses


def test_distance_transform_equals_scipy_exactly():
  rng = np.random.default_rng(0)
  for size, density in ((16, 0.05), (33, 0.2), (64, 0.01)):
    mask = rng.random((size, size)) < density
    mask[size // 2, size // 3] = True
    got = np.asarray(hmr_losses.squared_distance_transform(jnp.asarray(mask, jnp.float32)))
    # scipy returns the distance; its square is an integer up to float rounding.
    want = np.round(ndimage.distance_transform_edt(~mask)**2)
    np.testing.assert_array_equal(got, want)  # integers below 2^24: exact in float32.


def test_empty_silhouette_is_far_everywhere():
  got = hmr_losses.squared_distance_transform(jnp.zeros((8, 12)))
  np.testing.assert_array_equal(np.asarray(got), np.full((8, 12), 400.0))


def test_sample_distance_bilinear_and_outside():
  distance = jnp.asarray(np.sqrt(ndimage.distance_transform_edt(
      ~(np.arange(100).reshape(10, 10) == 44))**2), jnp.float32)  # one pixel: (row 4, col 4)
  points = jnp.array([[4.5, 4.5],  # its centre: 0
                      [6.5, 4.5],  # two pixels right: 2
                      [5.5, 4.5] + np.array([0.5, 0.0]),  # between 1 and 2: 1.5
                      [-2.5, 4.5]])  # 3 px left of the crop, whose border is 4 away: 7
  np.testing.assert_allclose(np.asarray(hmr_losses.sample_distance(distance, points)),
                             [0.0, 2.0, 1.5, 7.0], atol=1e-5)


def test_keypoint_reprojection_l1_by_hand():
  projected = jnp.array([[[0.1, 0.2], [0.3, 0.0], [5.0, 5.0]]])
  target = jnp.array([[[0.0, 0.0], [0.0, 0.0], [np.nan, np.nan]]])
  visible = jnp.array([[1.0, 1.0, 0.0]])
  # (0.1 + 0.2 + 0.3 + 0) / 4 visible coordinates; the NaN target is masked away.
  got = hmr_losses.keypoint_reprojection_l1(projected, target, visible)
  np.testing.assert_allclose(float(got), 0.15, rtol=1e-6)
  grad = jax.grad(lambda p: hmr_losses.keypoint_reprojection_l1(p, target, visible))(projected)
  assert np.all(np.isfinite(np.asarray(grad)))


def test_mesh_reprojection_of_a_shifted_bar():
  """The silhouette is column 10; points on column 12 (2 px right) cover every row: both
  chamfer terms are 2^2 px^2, so the loss is 8 (2 / S)^2."""
  size = 32
  mask = np.zeros((size, size), np.float32)
  mask[:, 10] = 1.0
  distance = jnp.sqrt(hmr_losses.squared_distance_transform(jnp.asarray(mask)))
  rows = np.arange(size) + 0.5
  on = np.stack([np.full(size, 10.5), rows], -1).astype(np.float32)
  shifted = on + np.array([2.0, 0.0], np.float32)
  points, any_pixel = hmr_losses.sample_silhouette_points(jnp.asarray(mask), jax.random.key(0), 64)
  assert bool(any_pixel)
  np.testing.assert_array_equal(np.asarray(points)[:, 0], 10.5)  # drawn from the silhouette.
  loss = hmr_losses.mesh_reprojection(jnp.asarray(shifted), jnp.asarray(shifted), distance,
                                      points, size)
  np.testing.assert_allclose(float(loss), 8.0 * (2.0 / size)**2, rtol=1e-5)
  zero = hmr_losses.mesh_reprojection(jnp.asarray(on), jnp.asarray(on), distance, points, size)
  assert float(zero) == 0.0
  # The gradient pulls the points left, towards the bar.
  grad = jax.grad(lambda v: hmr_losses.mesh_reprojection(v, v, distance, points, size))(
      jnp.asarray(shifted))
  assert np.all(np.asarray(grad)[:, 0] > 0)


def test_gradient_penalty_of_a_linear_critic():
  """f(x) = w . x has |grad| = |w| = 3 everywhere: the penalty is (3 - 1)^2 = 4."""
  w = {"a": jnp.array([2.0, 1.0]), "b": jnp.array([[2.0]])}  # |w| = sqrt(4 + 1 + 4) = 3
  critic = lambda x: x["a"] @ w["a"] + x["b"].reshape(-1, 1) @ w["b"][0]
  real = {"a": jnp.ones((5, 2)), "b": jnp.zeros((5, 1))}
  fake = {"a": jnp.zeros((5, 2)), "b": jnp.ones((5, 1))}
  penalty = hmr_losses.gradient_penalty(critic, real, fake, jax.random.key(1))
  np.testing.assert_allclose(float(penalty), 4.0, rtol=1e-5)


def test_hmr_projection_by_hand():
  points = jnp.array([[[0.3, 0.4, 5.0]]])
  camera = jnp.array([[2.0, 0.1, -0.2]])
  np.testing.assert_allclose(np.asarray(weak_perspective.project_hmr(points, camera)),
                             [[[0.8, 0.4]]], atol=1e-6)


def test_rotation_from_6d_recovers_the_rotation():
  rotation = lbs.rodrigues(jnp.array([0.3, -1.2, 0.5]))
  six = rotation[:, :2].reshape(6)  # the first two columns, row-major (SPIN's layout).
  np.testing.assert_allclose(np.asarray(lbs.rotation_from_6d(six)), np.asarray(rotation),
                             atol=1e-6)


def test_mean_params_of_the_shared_file(real_data_dir):
  """SPIN's mean body faces the camera upside-down-free: the global rotation is a half
  turn about x (model y up -> camera y down), and the mean camera is (0.9, 0, 0)."""
  import os
  theta = smpl.load_mean_params(os.path.join(real_data_dir, smpl.MEAN_PARAMS))
  assert theta.shape == (85,)
  np.testing.assert_allclose(theta[:3], [0.9, 0.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(np.abs(theta[3:6]), [np.pi, 0.0, 0.0], atol=1e-5)


def test_mean_params_errors_name_file_and_field(tmp_path):
  import pytest
  path = tmp_path / "means.npz"
  np.savez(path, pose=np.zeros(144), shape=np.zeros(9))
  with pytest.raises(smpl.SmplFileError, match=r"means.npz: field 'shape' has 9 values"):
    smpl.load_mean_params(str(path))
  np.savez(path, shape=np.zeros(10))
  with pytest.raises(smpl.SmplFileError, match=r"means.npz: no field 'pose'"):
    smpl.load_mean_params(str(path))
  with pytest.raises(smpl.SmplFileError, match="not found"):
    smpl.load_mean_params(str(tmp_path / "missing.npz"))


def test_per_example_kpr_averages_each_example_over_its_own_joints():
  projected = jnp.array([[[0.1, 0.2], [0.3, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])
  target = jnp.zeros((2, 2, 2))
  visible = jnp.array([[1.0, 1.0], [1.0, 0.0]])
  # Example 0: (0.1 + 0.2 + 0.3 + 0) / 4; example 1: (1 + 1) / 2 (its joint 1 unseen).
  np.testing.assert_allclose(
      np.asarray(hmr_losses.keypoint_reprojection_l1_per_example(projected, target, visible)),
      [0.15, 1.0], rtol=1e-6)
  # The batch loss pools the 6 visible coordinates: (0.6 + 2) / 6.
  np.testing.assert_allclose(
      float(hmr_losses.keypoint_reprojection_l1(projected, target, visible)), 2.6 / 6, rtol=1e-6)
