"""Detector-like COCO keypoints made from Human3.6M-layout 2D."""

import numpy as np

from jpose.evaluate import keypoint_robustness
from jpose.geometry import skeleton


def test_coco_conditions():
  rng = np.random.default_rng(1)
  pose_2d = rng.uniform(0, 1000, (4000, 17, 2)).astype(np.float32)
  conditions = keypoint_robustness.coco_conditions(pose_2d, noise_px=5.0, dropped=0.1)
  clean, noisy, missed = conditions.values()
  assert list(conditions) == ["clean", "noise 5 px", "noise 5 px, 10% missed"]
  # COCO's left wrist (9) is Human3.6M's LWrist (13); eyes and ears (1-4) are absent.
  np.testing.assert_array_equal(clean[:, 9, :2], pose_2d[:, 13])
  assert (clean[:, 1:5, 2] == 0).all() and (clean[:, [0] + list(range(5, 17)), 2] == 1).all()
  assert skeleton.COCO_17_TO_H36M_17[13] == 9
  # 4,000 x 12 x 2 noise draws of sigma 5: the sample std's standard error is 0.011.
  assert abs(np.std(noisy[:, 5:, :2] - clean[:, 5:, :2]) - 5.0) < 0.05
  # 48,000 joints missed at 10%: the rate's standard error is 0.0014.
  assert abs(1 - missed[:, 5:, 2].mean() - 0.1) < 0.007
  np.testing.assert_array_equal(missed[..., :2], noisy[..., :2])


def test_evaluate_scores_the_lift_function_it_is_given():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  target = np.zeros((10, 17, 3), np.float32)
  conditions = {"clean": np.zeros((10, 17, 3), np.float32)}

  def lift(shift, keypoints):  # every joint off by `shift` mm in x: MPJPE = shift.
    return jnp.zeros(keypoints.shape[:-1] + (3,)).at[..., 0].set(shift)
  results = keypoint_robustness.evaluate(lift, 7.0, conditions, target, batch_size=4)
  assert results["clean"]["mpjpe"] == np.float32(7.0)
  assert results["clean"]["p_mpjpe"] < 1e-3  # a translation is aligned away
