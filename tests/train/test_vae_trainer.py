"""The VAE trainer: the beta schedule, reprojection geometry, and real train steps."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.data import pipeline
from jpose.evaluate import baselines
from jpose.geometry import skeleton
from jpose.geometry import weak_perspective as wp
from jpose.train import loop
from jpose.train import vae


@pytest.mark.parametrize("epoch, expected", [
    (0.0, 0.0), (9.9, 0.0),  # warm-up
    (10.0, 0.0), (25.0, 0.0005), (40.0, 0.001),  # ramp over 30 epochs ...
    (45.0, 0.001), (49.9, 0.001),  # ... hold for 10 ...
    (50.0, 0.0), (65.0, 0.0005), (90.0, 0.0),  # ... and cycle every 40.
])
def test_beta_schedule(epoch, expected):
  config = configs.load("vae_unsupervised")
  np.testing.assert_allclose(float(vae.beta_schedule(jnp.asarray(epoch), config)), expected,
                             atol=1e-9)


def _pose(seed=0):
  from tfds_builders.synthetic_h36m import motion
  world = motion.animate("Walking", 5, 50.0, 1.0, np.random.default_rng(seed))
  return jnp.asarray(world - world[:, :1])  # root-centred (T, 17, 3)


def test_rotation_by_zero_reprojects_to_the_projection():
  pose = _pose()
  chex.assert_trees_all_close(wp.project(wp.rotate_about_vertical(pose, jnp.zeros(5))),
                              wp.project(pose))


def test_rotation_keeps_bone_lengths_and_the_vertical():
  pose = _pose(1)
  rotated = wp.rotate_about_vertical(pose, jnp.linspace(-3.0, 3.0, 5))
  chex.assert_trees_all_close(skeleton.bone_lengths(rotated), skeleton.bone_lengths(pose),
                              rtol=1e-5)
  chex.assert_trees_all_close(rotated[..., 1], pose[..., 1])  # y (vertical) unchanged
  quarter = wp.rotate_about_vertical(jnp.asarray([[1.0, 0.0, 0.0]]), jnp.asarray(np.pi / 2))
  chex.assert_trees_all_close(quarter, jnp.asarray([[0.0, 0.0, -1.0]]), atol=1e-6)


def test_weak_perspective_units_agree_for_a_distant_pose():
  # A pose 20 m away: normalised 2D equals normalised 3D's x, y up to the weak-perspective
  # error, |p| * (relative depth / distance): about 2.5% for +-0.5 m of depth at 20 m.
  pose = np.asarray(_pose(2)[0], np.float64) * np.array([1.0, -1.0, 1.0])  # any orientation
  camera_frame = pose[:, [0, 2, 1]] + np.array([0.0, 0.0, 20_000.0])
  focal, principal = np.array([[1000.0, 1000.0]]), np.array([[500.0, 500.0]])
  pixels = camera_frame[:, :2] / camera_frame[:, 2:] * focal + principal
  p2, scale = wp.normalise_2d(jnp.asarray(pixels[None]), jnp.asarray(focal), jnp.asarray(principal))
  q = wp.normalise_3d(jnp.asarray((camera_frame - camera_frame[:1])[None]),
                      jnp.asarray([camera_frame[0, 2]]), scale)
  np.testing.assert_allclose(np.asarray(wp.project(q)), np.asarray(p2), rtol=0.025, atol=1e-3)


@pytest.mark.parametrize("mode", ["supervised", "unsupervised"])
def test_real_train_steps_and_latent_plot(mode, tfds_dir, tmp_path):
  config = configs.load(f"vae_{mode}:tiny")
  config.data.data_dir = tfds_dir
  results = loop.train_and_evaluate(config, str(tmp_path))
  assert {"protocol1", "protocol2", "n_mpjpe"} <= set(results)
  assert (tmp_path / "latent_pca.png").stat().st_size > 10_000
  assert json.loads((tmp_path / "eval_results.json").read_text())["step"] == 6


def test_trivial_baselines(synthetic_train):
  test = synthetic_train  # the numbers only need to be computable and sensible here
  results = baselines.trivial_baselines(synthetic_train, test)
  mean = results["mean_pose"]["protocol1"]["frame_wise_mean"]
  # The mean pose's MPJPE is the mean distance of every training pose to it, by hand:
  expected = np.linalg.norm(test.pose_3d - test.pose_3d.mean(0), axis=-1).mean()
  np.testing.assert_allclose(mean, expected, rtol=1e-4)
  assert results["constant_depth"]["protocol2"]["frame_wise_mean"] < mean


def test_unit_scale_has_finite_gradients_at_the_zero_pose():
  grad = jax.grad(lambda p: jnp.sum(wp.unit_scale(p) ** 2))(jnp.zeros((16, 2)))
  assert bool(jnp.all(jnp.isfinite(grad)))
  chex.assert_trees_all_close(wp.unit_scale(jnp.asarray([[3.0, 4.0]])), jnp.asarray([[0.6, 0.8]]))
