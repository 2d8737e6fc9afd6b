"""jpose.bench.step_shares: a loss's share of a train step, from variants of the step
timed side by side."""

import pytest

import configs
from jpose.bench import step_shares


def test_heatmap_cost_compares_steps_with_and_without_the_loss():
  result = step_shares.benchmark_heatmap_cost(configs.load("integral_r50:tiny"), batch_size=4,
                                              rounds=1)
  # The cube loss adds a softplus over every voxel: 4 x 17 x 8 x 16 x 16 = 139,264 at least.
  # XLA counts it; the jaxpr count, matrix work only, is the same with and without.
  assert result["xla_flops_heatmap"] - result["xla_flops_integral_only"] >= 139_264
  assert result["flops_heatmap"] == result["flops_integral_only"] > 0
  on, off = result["step_ms_heatmap"], result["step_ms_integral_only"]
  assert result["heatmap_share"] == pytest.approx((on - off) / on, abs=2e-3)
