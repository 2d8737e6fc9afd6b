"""jpose.bench.timing: images/s of an image stage from the median timed call."""

import time

import pytest

from jpose.bench import timing


def test_images_per_s_is_the_batch_over_the_median_call():
  calls = []

  def slow(x):  # 10 ms a call, so 4 images a call make 400 images/s at most
    calls.append(x)
    time.sleep(0.01)
    return x

  result = timing.images_per_s(slow, [(1,), (2,)], batch_size=4, steps=5)
  assert len(calls) == 2 + 5 and calls[:3] == [1, 2, 1]  # compile, warm-up, timed calls
  assert result["images_per_s"] == pytest.approx(4 / (result["step_ms"] / 1e3), rel=0.01)
  assert 10.0 <= result["step_ms"] < 100.0
