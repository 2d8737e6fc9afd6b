"""Pose metrics on poses whose errors are known by hand."""

import chex
import jax.numpy as jnp
import numpy as np

from jpose.metrics import pose


def _poses(seed=0, shape=(4, 17, 3)):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape) * 200.0, jnp.float32)


def test_mpjpe_of_a_shifted_pose_is_the_offset():
  target = _poses()
  shifted = target + jnp.asarray([30.0, 40.0, 0.0])  # a 3-4-5 triangle: 50 mm.
  chex.assert_trees_all_close(pose.mpjpe(shifted, target), jnp.full(4, 50.0), rtol=1e-5)


def test_mpjpe_averages_over_joints():
  target = jnp.zeros((17, 3))
  predicted = target.at[0].set(jnp.asarray([170.0, 0.0, 0.0]))  # one joint 170 mm off.
  chex.assert_trees_all_close(pose.mpjpe(predicted, target), 10.0)


def test_aligned_errors_never_exceed_mpjpe():
  target = _poses(1, (64, 17, 3))
  predicted = target + _poses(2, (64, 17, 3)) * 0.3 + 25.0
  p1 = pose.mpjpe(predicted, target)
  assert bool(jnp.all(pose.p_mpjpe(predicted, target) <= p1 + 1e-3))


def test_p_mpjpe_ignores_a_similarity_transform():
  target = _poses(3)
  c, s = np.cos(0.7), np.sin(0.7)
  rotation = jnp.asarray([[c, -s, 0], [s, c, 0], [0, 0, 1]], jnp.float32)
  predicted = 1.3 * target @ rotation.T + 100.0
  chex.assert_trees_all_close(pose.p_mpjpe(predicted, target), jnp.zeros(4), atol=1e-2)
  assert float(pose.mpjpe(predicted, target).min()) > 50.0


def test_n_mpjpe_removes_scale():
  target = _poses(4)
  chex.assert_trees_all_close(pose.n_mpjpe(0.5 * target, target), jnp.zeros(4), atol=1e-3)


def test_mpjve_of_a_constant_offset_is_zero_and_of_drift_is_its_speed():
  target = _poses(5, (10, 17, 3))
  chex.assert_shape(pose.mpjve(target + 7.0, target), (9,))
  chex.assert_trees_all_close(pose.mpjve(target + 7.0, target), jnp.zeros(9), atol=1e-4)
  drift = target + jnp.arange(10.0)[:, None, None] * jnp.asarray([3.0, 4.0, 0.0])
  chex.assert_trees_all_close(pose.mpjve(drift, target), jnp.full(9, 5.0), rtol=1e-5)


def test_pck_and_auc_by_hand():
  target = jnp.zeros((17, 3))
  # 10 joints 100 mm off, 7 joints 200 mm off.
  error = jnp.where(jnp.arange(17) < 10, 100.0, 200.0)
  predicted = target.at[:, 0].set(error)
  chex.assert_trees_all_close(pose.pck3d(predicted, target), 10 / 17)
  # Thresholds 0, 5, ..., 150: the 100 mm joints count from 100 mm on (11 of 31).
  chex.assert_trees_all_close(pose.auc(predicted, target), (10 / 17) * 11 / 31, rtol=1e-6)
