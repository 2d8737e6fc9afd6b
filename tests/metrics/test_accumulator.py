"""The accumulator's action-wise and frame-wise means."""

import numpy as np
import pytest

from jpose.metrics import accumulator


def test_action_wise_and_frame_wise_means():
  acc = accumulator.ErrorAccumulator()
  # Walking: 3 frames of 10 mm (two batches); Sitting: 1 frame of 50 mm.
  acc.update({"mpjpe": np.array([10.0, 10.0])}, ["Walking 1", "Walking"], ["S9", "S11"])
  acc.update({"mpjpe": np.array([10.0, 50.0])}, ["Walking", "Sitting 2"], ["S9", "S9"])
  summary = acc.summary("mpjpe")
  assert summary["per_action"] == {"Sitting": 50.0, "Walking": 10.0}
  assert summary["action_wise_mean"] == pytest.approx(30.0)
  assert summary["frame_wise_mean"] == pytest.approx(20.0)
  assert summary["per_subject"] == {"S11": 10.0, "S9": pytest.approx(70.0 / 3)}
  assert acc.frame_count() == 4


def test_merge_equals_one_accumulator():
  a, b, both = (accumulator.ErrorAccumulator() for _ in range(3))
  a.update({"mpjpe": np.array([1.0])}, ["Eating"], ["S9"])
  b.update({"mpjpe": np.array([3.0])}, ["Eating"], ["S9"])
  both.update({"mpjpe": np.array([1.0, 3.0])}, ["Eating", "Eating"], ["S9", "S9"])
  a.merge(b)
  assert a.summary("mpjpe") == both.summary("mpjpe")


def test_padding_is_ignored_and_nan_is_refused():
  acc = accumulator.ErrorAccumulator()
  acc.update({"mpjpe": np.array([5.0, 999.0])}, ["Eating", "Eating"], ["S9", "S9"],
             valid=np.array([True, False]))
  assert acc.summary("mpjpe")["frame_wise_mean"] == 5.0
  with pytest.raises(FloatingPointError, match="mpjpe"):
    acc.update({"mpjpe": np.array([np.nan])}, ["Eating"], ["S9"])
