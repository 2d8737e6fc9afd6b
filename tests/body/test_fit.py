"""The fitter recovers joints made by a known pose and shape; priors; the CLI."""

from __future__ import annotations

from absl.testing import flagsaver
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose import fit as fit_cli
from jpose.body import fit
from jpose.body import lbs
from jpose.body import priors

# Few frames and steps keep each test to one compilation (~3 s on an idle 2-core CPU).
STEPS = 200
_joints = jax.jit(jax.vmap(fit.regressed_joints, in_axes=(None, 0, None)))
FRAMES = (11, 222, 333, 444)  # LSP training images with varied poses.


@pytest.fixture(scope="module")
def library(real_data_dir):
  """SPIN's SMPL fits of the 1,000 LSP training images: (1000, 82) pose + shape."""
  return np.load(f"{real_data_dir}/smpl_fits/lsp_orig_fits.npy")


@pytest.fixture(scope="module")
def truth(smpl_model, library):
  """Real LSP poses on the fixture body, turned to random global orientations, and one
  random shape: poses (4, 24, 3), betas (10,), H36M joints (4, 17, 3) in metres."""
  rng = np.random.default_rng(0)
  poses = library[list(FRAMES), :72].reshape(-1, 24, 3).astype(np.float32)
  poses[:, 0] = rng.normal(size=(len(FRAMES), 3))
  betas = (rng.normal(size=10) * 0.8).astype(np.float32)
  return poses, betas, np.asarray(_joints(smpl_model, poses, betas))


def test_reduced_model_gives_the_same_joints(smpl_model, truth):
  poses, betas, joints = truth
  reduced = fit.reduce_to_regressors(smpl_model)
  assert reduced.num_vertices < smpl_model.num_vertices / 5
  got = _joints(reduced, poses, betas)
  # Measured 1.3e-7 m (float32 summation order).
  np.testing.assert_allclose(got, joints, atol=2e-6)
  skin = jax.jit(lbs.skin)
  np.testing.assert_allclose(skin(reduced, poses[0], betas)[1],
                             skin(smpl_model, poses[0], betas)[1], atol=2e-6)


def test_fit_3d_recovers_root_relative_joints(smpl_model, truth, library):
  _, _, joints = truth
  # With a Gaussian prior from the 1,000 LSP fits, which also starts at its mean pose.
  gaussian = priors.fit_gaussian(library[:, :72])
  result = fit.fit_3d(smpl_model, joints * 1000.0, config=fit.FitConfig(steps=STEPS),
                      gaussian=gaussian)
  assert result.pose.shape == (4, 24, 3) and result.betas.shape == (4, 10)
  # The rest body is hundreds of mm off; the fit is measured at 1.6-3.5 mm per frame.
  rest = fit.regressed_joints(smpl_model, jnp.zeros((24, 3)), jnp.zeros(10))
  before = np.linalg.norm((rest - rest[0]) - (joints - joints[:, :1]), axis=-1).mean() * 1000
  assert before > 100.0
  mpjpe = np.nanmean(result.error, axis=1)
  assert np.all(mpjpe < 10.0), mpjpe
  np.testing.assert_allclose(result.joints[:, 0], 0.0, atol=1e-3)  # root-relative output
  assert result.loss[-1] < 1e-3 * result.loss[0]


def test_fit_3d_absolute_in_a_z_up_world_mm_frame(smpl_model, truth):
  """H36M's world is z-up, in mm, the subject metres from the origin."""
  _, _, joints = truth
  y_up_to_z_up = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
  targets = joints @ y_up_to_z_up.T * 1000.0 + np.array([1200.0, -3400.0, 900.0])
  result = fit.fit_3d(smpl_model, targets, root_relative=False,
                      config=fit.FitConfig(steps=STEPS))
  mpjpe = np.nanmean(result.error, axis=1)
  # Measured 3.2-4.4 mm, the root within 2.9 mm of its target; the translation (of the
  # model's origin, 0.15 m from its root) lands near the offset, in metres.
  assert np.all(mpjpe < 10.0), mpjpe
  np.testing.assert_allclose(result.joints[:, 0], targets[:, 0], atol=15.0)
  assert np.all(np.abs(result.translation - [1.2, -3.4, 0.9]).max(axis=1) < 0.3)


def test_fit_2d_reprojects_onto_the_keypoints(smpl_model, truth):
  poses, betas, _ = truth
  # Upright people facing the camera, turned by up to 0.8 rad, 4.5 m away.
  turns = np.random.default_rng(1).uniform(-0.8, 0.8, len(FRAMES))
  poses = poses.copy()
  poses[:, 0] = np.stack([np.asarray(lbs.axis_angle_from_matrix(
      lbs.rodrigues(jnp.array([np.pi, 0.0, 0.0])) @ lbs.rodrigues(jnp.array([0.0, t, 0.0]))))
                          for t in turns])
  camera_frame = np.asarray(_joints(smpl_model, poses, betas)) + np.array([0.1, -0.2, 4.5])
  focal, centre = np.array([1145.0, 1144.0]), np.array([512.0, 515.0])
  keypoints = camera_frame[..., :2] / camera_frame[..., 2:] * focal + centre
  keypoints[0, 9] = np.nan  # a detector's missing joint is ignored.
  result = fit.fit_2d(smpl_model, keypoints, focal, centre, config=fit.FitConfig(steps=STEPS))
  assert np.isnan(result.error[0, 9]) and np.isfinite(result.error).sum() == 4 * 17 - 1
  # Measured 0.6-2.1 px mean reprojection per frame. Depth trades with body size (the
  # height beta: the fits land 5.4-5.9 m away with a taller body) and limbs can flip
  # in depth, so only the image is checked.
  assert np.all(np.nanmean(result.error, axis=1) < 6.0), np.nanmean(result.error, axis=1)
  assert result.loss[-1] < 0.01 * result.loss[0]


def test_fit_rejects_bad_targets(smpl_model):
  with pytest.raises(ValueError, match=r"expected \(N, 17, 3\)"):
    fit.fit_3d(smpl_model, np.zeros((2, 16, 3)))
  targets = np.ones((1, 17, 3))
  targets[0, 8] = np.nan  # thorax
  with pytest.raises(ValueError, match="torso joints"):
    fit.fit_3d(smpl_model, targets)


def test_bend_limits_match_real_smpl_poses(library):
  poses = jnp.asarray(library[:, :72].reshape(-1, 24, 3))
  penalty = np.asarray(jax.vmap(priors.bend_limit_penalty)(poses))
  # On the 1,000 real fits the elbows never, and the knees of 10 images, bend the way
  # the limits forbid (hyperextended knees, up to 0.57 rad).
  assert (penalty > 0).sum() == 10 and penalty.max() < 0.6**2
  knee_backwards = jnp.zeros((24, 3)).at[4, 0].set(-0.5)
  np.testing.assert_allclose(priors.bend_limit_penalty(knee_backwards), 0.25, rtol=1e-6)
  np.testing.assert_allclose(priors.bend_limit_penalty(-knee_backwards), 0.0)


def test_gaussian_prior_prefers_real_poses(library):
  train, held_out = library[:900, :72], library[900:, :72]
  prior = priors.fit_gaussian(train)
  mean_pose = jnp.concatenate([jnp.zeros(3), prior.mean]).reshape(24, 3)
  np.testing.assert_allclose(prior(mean_pose), 0.0, atol=1e-6)
  real = jax.vmap(prior)(jnp.asarray(held_out.reshape(-1, 24, 3)))
  rng = np.random.default_rng(0)
  shuffled = held_out.reshape(-1, 24, 3)[:, rng.permutation(24)]  # plausible angles, wrong joints
  fake = jax.vmap(prior)(jnp.asarray(shuffled))
  assert np.median(real) * 3 < np.median(fake)


def test_pose_library_errors(tmp_path):
  np.save(tmp_path / "short.npy", np.zeros((5, 30)))
  with pytest.raises(ValueError, match=r"short.npy: pose library has shape \(5, 30\)"):
    priors.load_pose_library(str(tmp_path / "short.npy"))
  with pytest.raises(FileNotFoundError, match="nope.npy"):
    priors.load_pose_library(str(tmp_path / "nope.npy"))


def test_cli_fits_h36m_frames(smpl_npz_path, h36m_dir, tmp_path):
  out = tmp_path / "library.npz"
  with flagsaver.flagsaver():
    fit_cli.flags.FLAGS(["jpose.fit", "--model=smpl", f"--model_path={smpl_npz_path}",
                         f"--h36m_dir={h36m_dir}", "--subjects=S11", "--frame_stride=400",
                         "--max_sequences=2", "--steps=100", "--shape_frames=0",
                         f"--out={out}"])
    fit_cli.main([])
  saved = np.load(out)
  count = saved["pose"].shape[0]
  assert count > 0 and saved["pose"].shape == (count, 24, 3)
  assert saved["betas"].shape == (count, 10) and saved["error_mm"].shape == (count, 17)
  assert set(saved["subject"]) == {"S11"} and np.all(saved["frame"] % 400 == 0)
  np.testing.assert_allclose(saved["mpjpe_mm"], np.nanmean(saved["error_mm"], axis=1))
  # The fixture body is not human-proportioned; only that the fit lands is checked.
  assert np.all(saved["mpjpe_mm"] < 200.0)
