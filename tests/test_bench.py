"""The benchmark entry point: every config compiles and reports sensible numbers."""

import json
import os
import subprocess
import sys

import pytest

import configs
from jpose import bench

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ["martinez", "deepbase1", "deepbase2", "gan", "tcn1", "tcn27", "tcn81", "tcn243",
           "tcn243_depth", "vae_supervised", "vae_unsupervised"]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_benchmarks(name):
  result = bench.benchmark(configs.load(f"{name}:tiny"), batch_size=16, steps=1)
  assert result["params"] > 0 and result["step_ms"] > 0 and result["flops_per_step"] > 0
  assert result["samples_per_s"] == pytest.approx(16 / (result["step_ms"] / 1e3), rel=0.01)


def test_flop_count_is_that_of_the_dense_layers():
  result = bench.benchmark(configs.load("martinez:tiny"), batch_size=16, steps=1)
  # Dense kernels: 32x32 in, 4 x 32x32 in the blocks, 32x48 out = 6,656 weights; a forward
  # pass is 2 x 16 x 6,656 FLOPs, and forward + backward (+ BN, Adam) is 3-8 times that.
  forward = 2 * 16 * 6_656
  assert 3 * forward <= result["flops_per_step"] <= 8 * forward


def test_cli_prints_one_json_line():
  out = subprocess.run([sys.executable, "-m", "jpose.bench", "--config", "martinez:tiny",
                        "--steps", "2", "--json"], cwd=REPO, capture_output=True, text=True,
                       check=True, timeout=300)
  line = json.loads(out.stdout.strip().splitlines()[-1])
  assert {"config", "params", "batch_size", "compile_s", "step_ms", "samples_per_s",
          "device_kind", "device_count"} <= set(line)
  assert line["config"] == "martinez:tiny" and line["params"] == 7_184
