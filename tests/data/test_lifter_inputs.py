"""What lifters read of a 2D pose: the joint sets, the pose frame and train-time dropout."""

import jax
import jax.numpy as jnp
import numpy as np

from jpose.data import lifter_inputs
from jpose.data import pipeline
from jpose.geometry import skeleton


def _pose() -> np.ndarray:
  """A (17, 2) pose with hips at (90, 200) and (110, 200): centre (100, 200)."""
  pose = np.tile(np.array([[100.0, 100.0]]), (17, 1))
  pose[1], pose[4] = [90.0, 200.0], [110.0, 200.0]
  pose[10] = [100.0, 0.0]  # the head, 200 px above the hips' midpoint
  return pose


def test_coco_set_is_the_13_joints_coco_gives():
  joints = lifter_inputs.KEYPOINT_SETS["coco"]
  names = [skeleton.H36M_17.joint_names[j] for j in joints]
  assert len(joints) == 13
  assert not {"Hip", "Spine", "Thorax", "Head"} & set(names) and "Neck/Nose" in names
  assert lifter_inputs.lifter_joints("coco") == joints
  assert len(lifter_inputs.lifter_joints("h36m")) == 16  # Martinez's: no Neck/Nose
  selected = lifter_inputs.select(_pose(), "coco")
  assert np.isnan(selected[[0, 7, 8, 10]]).all() and not np.isnan(selected[list(joints)]).any()


def test_pose_frame_by_hand():
  # Centre (100, 200). Distances: 14 joints at (100, 100) are 100 away, the hips 10, the
  # head 200: RMS = sqrt((14 * 100^2 + 2 * 10^2 + 200^2) / 17) = sqrt(180200 / 17).
  out = lifter_inputs.to_pose_frame(_pose())
  rms = np.sqrt(180_200 / 17)
  np.testing.assert_allclose(out[10], [0.0, -200 / rms], rtol=1e-6)
  np.testing.assert_allclose(out[4], [10 / rms, 0.0], rtol=1e-6)
  moved = _pose() * 3.0 + [40.0, -7.0]
  np.testing.assert_allclose(lifter_inputs.to_pose_frame(moved), out, atol=1e-9)
  # numpy and jax agree.
  np.testing.assert_allclose(np.asarray(lifter_inputs.to_pose_frame(jnp.asarray(_pose()))),
                             out, rtol=1e-5)


def test_centre_falls_back_when_hips_are_missing():
  pose = _pose()
  np.testing.assert_allclose(lifter_inputs.centre(pose), [100.0, 200.0])
  one_hip = pose.copy()
  one_hip[4] = np.nan
  np.testing.assert_allclose(lifter_inputs.centre(one_hip), [90.0, 200.0])
  no_hips = pose.copy()
  no_hips[[1, 4]] = np.nan  # the mean of the other 15: 14 at (100, 100) and the head
  np.testing.assert_allclose(lifter_inputs.centre(no_hips), [100.0, 1400.0 / 15])
  assert np.isnan(lifter_inputs.centre(np.full((17, 2), np.nan))).all()


def test_drop_joints_rate_and_norm_stats_of_absent_joints():
  poses = jnp.asarray(np.tile(_pose(), (2000, 1, 1)))
  dropped = np.isnan(np.asarray(lifter_inputs.drop_joints(poses, jax.random.key(0), 0.1)))
  assert (dropped[..., 0] == dropped[..., 1]).all()
  # 34,000 Bernoulli(0.1) draws: 3 standard deviations are 0.0049.
  assert abs(dropped[..., 0].mean() - 0.1) < 0.005


def test_norm_stats_in_the_pose_frame(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train, "coco", "pose")
  absent = [0, 7, 8, 10]
  np.testing.assert_array_equal(stats.mean_2d[absent], 0.0)
  np.testing.assert_array_equal(stats.std_2d[absent], 1.0)
  # The pose frame's hips straddle the origin: their mean midpoint is 0.
  np.testing.assert_allclose((stats.mean_2d[1] + stats.mean_2d[4]) / 2, 0.0, atol=1e-6)
  assert 0.1 < stats.std_2d[13, 0] < 2.0  # a wrist, in units of the pose's RMS radius
