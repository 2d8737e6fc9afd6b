"""The built-in synthetic dataset: schema, splits, determinism and plausible motion."""

import numpy as np

from jpose.body import motion
from jpose.data import datasets
from jpose.geometry import skeleton


def test_splits_and_schema(tfds_dir):
  builder = datasets.prepare("synthetic_h36m", tfds_dir)
  assert builder.info.splits["train"].num_examples == 5 * 4 * 2 * 4
  assert builder.info.splits["test"].num_examples == 2 * 4 * 2 * 4
  r = builder.as_data_source(split="test")[0]
  assert r["pose_3d"].shape == (600, 17, 3) and r["pose_2d_sh"].shape == (600, 17, 2)
  assert np.isnan(r["pose_2d_sh"][:, skeleton.NECK_NOSE]).all()
  # Detector stand-in: GT plus ~5 px noise.
  noise = np.delete(r["pose_2d_sh"] - r["pose_2d_gt"], skeleton.NECK_NOSE, axis=1)
  assert 3.0 < np.std(noise) < 7.0


def test_motion_is_deterministic_rigid_and_smooth():
  for action in motion.ACTIONS:
    a = motion.animate(action, 300, 50.0, 1.0, np.random.default_rng(3))
    b = motion.animate(action, 300, 50.0, 1.0, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    lengths = skeleton.bone_lengths(a)
    np.testing.assert_allclose(lengths.std(0), 0.0, atol=1e-2)  # bones never stretch.
    thigh = lengths[0, 1]  # RHip-RKnee
    np.testing.assert_allclose(thigh, motion.THIGH, rtol=1e-4)
    # Smooth at 50 fps: no joint moves more than 6 cm between frames (3 m/s).
    assert np.abs(np.diff(a, axis=0)).max() < 60.0, action
    assert a[..., 2].min() > 0.0  # never below the floor.
