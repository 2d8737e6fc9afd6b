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
  from jpose.body import motion
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


def test_bone_symmetry_is_zero_for_a_mirror_symmetric_pose_and_counts_each_pair_twice():
  joints = np.asarray(_pose(3)[0], np.float64)
  h36m = skeleton.H36M_17
  twin = h36m.flip_permutation
  for j in range(17):  # mirror every right joint onto its left twin; the spine onto x = 0
    if twin[j] == j:
      joints[j, 0] = 0.0
  for j in range(17):
    if twin[j] > j:
      joints[twin[j]] = joints[j] * np.array([-1.0, 1.0, 1.0])
  symmetric = jnp.asarray(joints[None, 1:], jnp.float32)
  assert float(vae.bone_symmetry(symmetric)) == pytest.approx(0.0, abs=1e-8)
  # Lengthen one leg's lower bone by 0.1 along itself: two of the 16 bones now differ
  # from their twin by 0.1, so the mean squared difference is 2 * 0.01 / 16.
  foot, knee = h36m.joint_names.index("LFoot"), h36m.joint_names.index("LKnee")
  direction = (joints[foot] - joints[knee]) / np.linalg.norm(joints[foot] - joints[knee])
  joints[foot] += 0.1 * direction
  longer = jnp.asarray(joints[None, 1:], jnp.float32)
  assert float(vae.bone_symmetry(longer)) == pytest.approx(2 * 0.01 / 16, rel=1e-3)


def test_consistency_and_symmetry_terms_train(tfds_dir, tmp_path):
  config = configs.load("vae_unsupervised:tiny")
  config.data.data_dir = tfds_dir
  config.vae.lambda_consistency, config.vae.lambda_symmetry = 1.0, 1.0
  exp = loop.build_experiment(config)
  state = exp.init_state()
  step = loop.compile_train_step(exp)
  batch = {"frame_id": jnp.arange(16, dtype=jnp.int32)[None], "flip": jnp.zeros((1, 16), bool)}
  state, metrics = step(state, batch, exp.resident)
  assert {"consistency", "symmetry", "reconstruction", "adversarial"} <= set(metrics)
  assert all(bool(jnp.all(jnp.isfinite(v))) for v in metrics.values())
  assert float(metrics["consistency"][0]) > 0


def _camera_view(distance_mm=5_000.0, offset_mm=(800.0, -300.0)):
  """A synthetic pose 5 m in front of a pinhole camera, off its axis: (pixels (1, 17, 2),
  root-relative camera-frame mm (1, 17, 3), root depth (1,), focal, principal)."""
  pose = np.asarray(_pose(4)[2], np.float64) * np.array([1.0, -1.0, 1.0])
  camera_frame = pose[:, [0, 2, 1]] + np.array([offset_mm[0], offset_mm[1], distance_mm])
  focal, principal = np.array([[1145.0, 1144.0]]), np.array([[512.0, 515.0]])
  pixels = camera_frame[:, :2] / camera_frame[:, 2:] * focal + principal
  relative = camera_frame - camera_frame[:1]
  return (jnp.asarray(pixels[None]), jnp.asarray(relative[None]),
          jnp.asarray([camera_frame[0, 2]]), jnp.asarray(focal), jnp.asarray(principal))


def test_perspective_reprojection_is_exact_and_sees_the_depth_mirror():
  pixels, relative, depth, focal, principal = _camera_view()
  p2, scale = wp.normalise_2d(pixels, focal, principal)
  q = wp.normalise_3d(relative, depth, scale)
  root = wp.root_image_point(pixels, focal, principal)
  np.testing.assert_allclose(np.asarray(wp.perspective(q, scale, root)), np.asarray(p2),
                             rtol=1e-5, atol=1e-5)
  # Orthographic views cannot tell q from its depth mirror: rotated by theta the mirror
  # projects exactly as q rotated by -theta does, so a discriminator of randomly rotated
  # views sees the same distribution from both.
  mirror = q * jnp.asarray([1.0, 1.0, -1.0])
  theta = jnp.asarray([0.7])
  np.testing.assert_allclose(np.asarray(wp.project(wp.rotate_about_vertical(mirror, theta))),
                             np.asarray(wp.project(wp.rotate_about_vertical(q, -theta))),
                             atol=1e-6)
  # The pinhole view of the mirror misses the input by several percent of the pose's size.
  miss = np.abs(np.asarray(wp.perspective(mirror, scale, root) - p2)).max()
  assert miss > 0.05


def test_rotation_about_a_tilted_axis_and_the_mirror_identity():
  pose = _pose(5)[:3]  # (3, 17, 3)
  up = jnp.asarray([0.05, -0.97, -0.23])
  up = jnp.broadcast_to(up / jnp.linalg.norm(up), (3, 3))
  angle = jnp.asarray([0.4, -1.3, 2.9])
  rotated = wp.rotate_about_axis(pose, up, angle)
  chex.assert_trees_all_close(skeleton.bone_lengths(rotated), skeleton.bone_lengths(pose),
                              rtol=1e-5)
  chex.assert_trees_all_close(jnp.sum(rotated * up[:, None], -1), jnp.sum(pose * up[:, None], -1),
                              atol=1e-4)  # the height along the axis is kept
  y = jnp.broadcast_to(jnp.asarray([0.0, 1.0, 0.0]), (3, 3))
  chex.assert_trees_all_close(wp.rotate_about_axis(pose, y, angle),
                              wp.rotate_about_vertical(pose, angle), atol=1e-4)
  # The depth mirror M of a pose, rotated by theta about k, is the mirror of the pose
  # rotated by -theta about M k: about a tilted k that is a different axis, so the
  # mirror's views differ from every view of the pose about k.
  m = jnp.asarray([1.0, 1.0, -1.0])
  chex.assert_trees_all_close(wp.rotate_about_axis(pose * m, up, angle),
                              wp.rotate_about_axis(pose, up * m, -angle) * m, atol=1e-4)
