"""jpose.bench.train_step: every config's step compiles, is timed and reports sensible
numbers, and lowers for a GPU on this CPU."""

import pytest

import configs
from jpose.bench import train_step

CONFIGS = ["martinez", "deepbase1", "deepbase2", "gan", "tcn1", "tcn27", "tcn81", "tcn243",
           "tcn243_depth", "vae_supervised", "vae_unsupervised"]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_benchmarks(name):
  result = train_step.benchmark(configs.load(f"{name}:tiny"), batch_size=16, steps=1)
  assert result["params"] > 0 and result["step_ms"] > 0 and result["flops_per_step"] > 0
  assert result["samples_per_s"] == pytest.approx(16 / (result["step_ms"] / 1e3), rel=0.01)


def test_xla_flop_count_is_kept_beside_the_jaxpr_count():
  result = train_step.benchmark(configs.load("martinez:tiny"), batch_size=16, steps=1)
  # Dense kernels: 32x32 in, 4 x 32x32 in the blocks, 32x48 out = 6,656 weights; a forward
  # pass is 2 x 16 x 6,656 FLOPs. XLA:CPU's count adds batch norm, dropout and Adam to the
  # matrix work (tests/test_flops.py checks the jaxpr count exactly): 3-8 times that.
  forward = 2 * 16 * 6_656
  assert 3 * forward <= result["xla_flops"] <= 8 * forward
  assert result["flops_per_step"] < result["xla_flops"]


def test_bf16_and_several_steps_per_dispatch_keep_the_per_step_flops():
  f32 = train_step.benchmark(configs.load("martinez:tiny"), batch_size=16, steps=2)
  config = configs.load("martinez:tiny")
  config.train.compute_dtype, config.train.steps_per_dispatch = "bfloat16", 2
  config.train.num_steps = config.train.log_every = config.train.checkpoint_every = 2
  bf16 = train_step.benchmark(config, batch_size=16, steps=4)
  assert bf16["dtype"] == "bfloat16" and bf16["steps_per_dispatch"] == 2
  assert bf16["flops_per_step"] == pytest.approx(f32["flops_per_step"], rel=0.1)


def test_peak_table_picks_the_longest_matching_device_kind():
  assert train_step.peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.0
  assert train_step.peak_tflops("NVIDIA H100 PCIe", "bfloat16") == 756.0
  assert train_step.peak_tflops("TPU v5 lite", "float32") == 197.0
  assert train_step.peak_tflops("cpu", "float32") is None


@pytest.mark.parametrize("name", configs.names())
def test_every_config_train_step_lowers_for_cuda(name):
  lowered = train_step.lower_train_step(configs.load(f"{name}:tiny"), 2, "cuda")
  text = lowered.as_text()
  assert "stablehlo" in text
  if name.startswith(("integral", "hmr")):  # their ResNets lower as convolutions
    assert "stablehlo.convolution" in text
