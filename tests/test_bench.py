"""The benchmark entry point: every config compiles and reports sensible numbers."""

import gzip
import json
import os
import subprocess
import sys
import time

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


def test_xla_flop_count_is_kept_beside_the_jaxpr_count():
  result = bench.benchmark(configs.load("martinez:tiny"), batch_size=16, steps=1)
  # Dense kernels: 32x32 in, 4 x 32x32 in the blocks, 32x48 out = 6,656 weights; a forward
  # pass is 2 x 16 x 6,656 FLOPs. XLA:CPU's count adds batch norm, dropout and Adam to the
  # matrix work (tests/test_flops.py checks the jaxpr count exactly): 3-8 times that.
  forward = 2 * 16 * 6_656
  assert 3 * forward <= result["xla_flops"] <= 8 * forward
  assert result["flops_per_step"] < result["xla_flops"]


def test_cli_prints_one_json_line():
  out = subprocess.run([sys.executable, "-m", "jpose.bench", "--config", "martinez:tiny",
                        "--steps", "2", "--json"], cwd=REPO, capture_output=True, text=True,
                       check=True, timeout=300)
  line = json.loads(out.stdout.strip().splitlines()[-1])
  assert {"config", "dtype", "params", "batch_size", "steps_per_dispatch", "compile_s",
          "step_ms", "samples_per_s", "flops_per_step", "flops_per_sample", "xla_flops",
          "tflops_per_s", "mfu",
          "peak_memory_bytes", "device_kind", "device_count"} <= set(line)
  assert line["config"] == "martinez:tiny" and line["params"] == 7_184
  assert line["dtype"] == "float32" and line["mfu"] is None  # no peak is known for a CPU


def test_bf16_and_several_steps_per_dispatch_keep_the_per_step_flops():
  f32 = bench.benchmark(configs.load("martinez:tiny"), batch_size=16, steps=2)
  config = configs.load("martinez:tiny")
  config.train.compute_dtype, config.train.steps_per_dispatch = "bfloat16", 2
  config.train.num_steps = config.train.log_every = config.train.checkpoint_every = 2
  bf16 = bench.benchmark(config, batch_size=16, steps=4)
  assert bf16["dtype"] == "bfloat16" and bf16["steps_per_dispatch"] == 2
  assert bf16["flops_per_step"] == pytest.approx(f32["flops_per_step"], rel=0.1)


def test_peak_table_picks_the_longest_matching_device_kind():
  assert bench.peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.0
  assert bench.peak_tflops("NVIDIA H100 PCIe", "bfloat16") == 756.0
  assert bench.peak_tflops("TPU v5 lite", "float32") == 197.0
  assert bench.peak_tflops("cpu", "float32") is None


def test_input_pipeline_rate(tfds_dir):
  config = configs.load("tcn27:tiny")
  config.data.data_dir = tfds_dir
  result = bench.benchmark_input_pipeline(config, batch_size=64, steps=20)
  assert result["batch_keys"] == ["frame_id", "flip"] and result["receptive_field"] == 27
  assert result["samples_per_s"] == pytest.approx(64 * result["batches_per_s"], rel=0.01)
  assert result["batches_per_s"] > 0 and result["host_windows_per_s"] > 0


def test_op_time_summary_keeps_the_programs_ops_per_step(tmp_path):
  events = [
      {"ph": "M", "pid": 1, "tid": 7, "name": "thread_name", "args": {"name": "python"}},
      {"ph": "X", "pid": 1, "tid": 3, "name": "dot.4", "dur": 3000.0},
      {"ph": "X", "pid": 1, "tid": 3, "name": "dot.7", "dur": 1000.0},
      {"ph": "X", "pid": 1, "tid": 3, "name": "loop_add_fusion", "dur": 1000.0},
      {"ph": "X", "pid": 1, "tid": 3, "name": "ThunkExecutor::Execute", "dur": 9000.0},
      {"ph": "X", "pid": 1, "tid": 7, "name": "dot.4", "dur": 9000.0},  # python thread
      {"ph": "X", "pid": 1, "tid": 3, "name": "$profiler.py:1 trace", "dur": 9000.0},
  ]
  folder = tmp_path / "plugins" / "profile" / "run"
  folder.mkdir(parents=True)
  with gzip.open(folder / "perfetto_trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)
  # 5 ms of ops over 2 steps: the dots are 2 ms a step (80%), the fusion 0.5 ms (20%).
  assert bench.op_time_summary(str(tmp_path), steps=2) == [["dot", 2.0, 0.8],
                                                           ["loop_add_fusion", 0.5, 0.2]]


def test_op_time_summary_ranks_a_gpus_stream_kernels_not_the_hosts_dispatch(tmp_path):
  # As an H200 trace has them: the host's dispatch events overlap the kernels and must not
  # count; kernel names (C++ templates, with '::') must.
  gemm = "void cutlass::Kernel<sm90_xmma_gemm_bf16>(Params)"
  events = [
      {"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "/host:CPU"}},
      {"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "/device:GPU:0"}},
      {"ph": "M", "pid": 2, "tid": 20, "name": "thread_name", "args": {"name": "Stream #20(Compute)"}},
      {"ph": "M", "pid": 2, "tid": 1, "name": "thread_name", "args": {"name": "Launch Stats"}},
      {"ph": "X", "pid": 1, "tid": 5, "name": "PJRT_LoadedExecutable_Execute", "dur": 9000.0},
      {"ph": "X", "pid": 1, "tid": 5, "name": "cuGraphLaunch", "dur": 9000.0},
      {"ph": "X", "pid": 2, "tid": 20, "name": gemm, "dur": 3000.0},
      {"ph": "X", "pid": 2, "tid": 20, "name": "loop_select_fusion.3", "dur": 1000.0},
      {"ph": "X", "pid": 2, "tid": 1, "name": "loop_select_fusion.3", "dur": 1000.0},
  ]
  folder = tmp_path / "plugins" / "profile" / "run"
  folder.mkdir(parents=True)
  with gzip.open(folder / "perfetto_trace.json.gz", "wt") as f:
    json.dump({"traceEvents": events}, f)
  assert bench.op_time_summary(str(tmp_path), steps=2) == [[gemm, 1.5, 0.75],
                                                           ["loop_select_fusion", 0.5, 0.25]]


def test_images_per_s_is_the_batch_over_the_median_call():
  calls = []

  def slow(x):  # 10 ms a call, so 4 images a call make 400 images/s at most
    calls.append(x)
    time.sleep(0.01)
    return x

  result = bench._images_per_s(slow, [(1,), (2,)], batch_size=4, steps=5)
  assert len(calls) == 2 + 5 and calls[:3] == [1, 2, 1]  # compile, warm-up, timed calls
  assert result["images_per_s"] == pytest.approx(4 / (result["step_ms"] / 1e3), rel=0.01)
  assert 10.0 <= result["step_ms"] < 100.0


def test_image_pipeline_rate_on_lsp_subset(real_data_dir, tmp_path):
  lspet = tmp_path / "manual" / "lspet"
  (lspet / "images").mkdir(parents=True)
  os.symlink(os.path.join(real_data_dir, "lspet_subset/joints.mat"), lspet / "joints.mat")
  for i in range(1, 9):
    name = f"im{i:05d}.jpg"
    os.symlink(os.path.join(real_data_dir, "lspet_subset/images", name), lspet / "images" / name)
  result = bench.benchmark_image_pipeline("lsp", batch_size=4, steps=3,
                                          data_dir=str(tmp_path / "tfds"),
                                          manual_dir=str(tmp_path / "manual"))
  assert result["model"] == "image_pipeline" and result["size"] == 256
  assert result["images_per_s"] > 0 and result["decode_simplejpeg_images_per_s"] > 0


def test_image_stage_cli_runs_without_a_config():
  out = subprocess.run([sys.executable, "-m", "jpose.bench", "--model", "augment", "--size", "32",
                        "--batch-size", "2", "--steps", "2", "--json"], cwd=REPO,
                       capture_output=True, text=True, check=True, timeout=300)
  line = json.loads(out.stdout.strip().splitlines()[-1])
  assert line["model"] == "augment" and line["size"] == 32 and line["batch_size"] == 2
  assert line["images_per_s"] > 0 and line["device_kind"] == "cpu"


def test_heatmap_cost_compares_steps_with_and_without_the_loss():
  result = bench.benchmark_heatmap_cost(configs.load("integral_r50:tiny"), batch_size=4, rounds=1)
  # The cube loss adds a softplus over every voxel: 4 x 17 x 8 x 16 x 16 = 139,264 at least.
  # XLA counts it; the jaxpr count, matrix work only, is the same with and without.
  assert result["xla_flops_heatmap"] - result["xla_flops_integral_only"] >= 139_264
  assert result["flops_heatmap"] == result["flops_integral_only"] > 0
  on, off = result["step_ms_heatmap"], result["step_ms_integral_only"]
  assert result["heatmap_share"] == pytest.approx((on - off) / on, abs=2e-3)
