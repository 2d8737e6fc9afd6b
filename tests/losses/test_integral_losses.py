"""The integral L1 and the Gaussian-cube heatmap BCE against hand-computed values and a
dense float64 numpy reference that builds the whole target volume."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jpose.losses import integral

GRID = (12, 14, 16)  # (d, h, w)


def test_integral_l1_by_hand():
  # Batch of 2, 2 joints. Sample 0 has 3D; sample 1 is 2D-only (its z errors must not
  # count) and its joint 1 is unannotated (NaN target, must not count or poison).
  target = np.array([[[8.0, 7.0, 6.0], [1.0, 2.0, 3.0]],
                     [[4.0, 4.0, 4.0], [np.nan, np.nan, np.nan]]], np.float32)
  pred = target.copy()
  pred[0, 0] += [1.6, 0.0, 0.0]  # 1.6 / w = 0.1
  pred[0, 1] += [0.0, -1.4, 3.0]  # 1.4 / h = 0.1, 3 / d = 0.25
  pred[1, 0] += [0.0, 0.0, 5.0]  # ignored: no 3D
  pred[1, 1] = [0.0, 0.0, 0.0]  # ignored: not visible
  visible = np.array([[1, 1], [1, 0]], np.float32)
  has_3d = np.array([1, 0], np.float32)
  loss, grad = jax.value_and_grad(integral.integral_l1)(
      jnp.asarray(pred), jnp.asarray(target), jnp.asarray(visible), jnp.asarray(has_3d), GRID)
  # Sun et al.: summed over joints and axes, divided by the batch size 2.
  np.testing.assert_allclose(float(loss), (0.1 + 0.1 + 0.25) / 2, rtol=1e-5)
  # d|error|/dpred = sign / (extent * batch) where counted, 0 where masked (not NaN).
  grad = np.asarray(grad)
  np.testing.assert_allclose([grad[0, 0, 0], grad[0, 1, 1], grad[0, 1, 2]],
                             [1 / 16 / 2, -1 / 14 / 2, 1 / 12 / 2], rtol=1e-6)
  np.testing.assert_array_equal(grad[1, 1], 0.0)  # unannotated, NaN target
  assert grad[1, 0, 2] == 0.0  # z of the 2D-only sample


def _dense_reference(logits, centres, mask, cube=11):
  """float64 numpy: the full target volume, then the mean sigmoid BCE and its gradient."""
  logits = np.asarray(logits, np.float64)
  batch, joints, d, h, w = logits.shape
  z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
  losses, grads = np.zeros((batch, joints)), np.zeros_like(logits)
  for b in range(batch):
    for j in range(joints):
      if not mask[b, j]:
        continue
      cx, cy, cz = centres[b, j]
      in_cube = ((np.abs(x - math.floor(cx)) <= cube // 2) & (np.abs(y - math.floor(cy)) <= cube // 2)
                 & (np.abs(z - math.floor(cz)) <= cube // 2))
      r2 = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 + (z + 0.5 - cz) ** 2
      t = np.where(in_cube, np.exp(-r2 / 2) / math.sqrt(2 * math.pi), 0.0)
      p = 1 / (1 + np.exp(-logits[b, j]))
      losses[b, j] = np.mean(-t * np.log(p) - (1 - t) * np.log(1 - p))
      grads[b, j] = (p - t) / p.size
  count = max(mask.sum(), 1)
  return (losses * mask).sum() / count, grads / count


def test_gaussian_cube_bce_matches_the_dense_target_including_clipped_cubes():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 2, (2, 4) + GRID).astype(np.float32)
  centres = np.array([
      [[8.3, 7.1, 6.6],  # interior: the whole cube inside
       [0.2, 13.9, 11.5],  # clipped at x = 0, y = h and z = d
       [15.99, 0.01, 0.5],  # a corner
       [3.0, 9.0, 2.0]],  # exactly on voxel edges
      [[-3.0, 4.0, 4.0],  # outside the grid on the left: only the cube's overhang counts
       [7.5, 6.5, 5.5],
       [np.nan, np.nan, np.nan],  # masked (unannotated): must not poison the loss
       [22.0, 6.0, 6.0]]], np.float32)  # beyond the right edge, by more than the cube
  mask = np.array([[1, 1, 1, 1], [1, 1, 0, 1]], np.float32)
  loss, grad = jax.value_and_grad(integral.gaussian_cube_bce)(
      jnp.asarray(logits), jnp.asarray(centres), jnp.asarray(mask))
  expected_loss, expected_grad = _dense_reference(logits, np.nan_to_num(centres), mask)
  # Measured: loss relative error 7.3e-8 (the in-cube correction alone moves the loss by
  # 4e-3 relative); gradient error 1.8e-11 on entries up to 5.3e-5.
  np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(grad), expected_grad, atol=2e-10)
  assert np.all(np.asarray(grad)[1, 2] == 0)  # the masked joint gets no gradient


def test_a_volume_thinner_than_the_cube():
  logits = np.random.default_rng(1).normal(0, 1, (1, 1, 4, 14, 16)).astype(np.float32)
  centres = np.array([[[5.5, 6.2, 1.7]]], np.float32)
  mask = np.ones((1, 1), np.float32)
  loss = integral.gaussian_cube_bce(jnp.asarray(logits), jnp.asarray(centres), jnp.asarray(mask))
  expected, _ = _dense_reference(logits, centres, mask)
  np.testing.assert_allclose(float(loss), expected, rtol=3e-6)  # measured 2.9e-7 relative


def test_the_target_peaks_at_the_joint():
  # Logits equal to the target's logit inside the cube and very negative outside give a
  # lower loss than the same logits shifted by one voxel: the loss knows where the joint is.
  d, h, w = GRID
  centre = np.array([8.5, 7.5, 6.5])
  z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
  t = np.exp(-((x + 0.5 - centre[0]) ** 2 + (y + 0.5 - centre[1]) ** 2
               + (z + 0.5 - centre[2]) ** 2) / 2) / math.sqrt(2 * math.pi)
  logits = np.log(t) - np.log1p(-t)
  loss = lambda l: float(integral.gaussian_cube_bce(
      jnp.asarray(l[None, None], jnp.float32), jnp.asarray(centre[None, None], jnp.float32),
      jnp.ones((1, 1))))
  assert loss(logits) < loss(np.roll(logits, 1, axis=2)) - 1e-4
