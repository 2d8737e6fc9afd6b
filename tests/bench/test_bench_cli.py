"""`python -m jpose.bench` (jpose/bench/__main__.py): one JSON line for a config's train
step, and for an image stage without a config."""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


def test_image_stage_cli_runs_without_a_config():
  out = subprocess.run([sys.executable, "-m", "jpose.bench", "--model", "augment", "--size", "32",
                        "--batch-size", "2", "--steps", "2", "--json"], cwd=REPO,
                       capture_output=True, text=True, check=True, timeout=300)
  line = json.loads(out.stdout.strip().splitlines()[-1])
  assert line["model"] == "augment" and line["size"] == 32 and line["batch_size"] == 2
  assert line["images_per_s"] > 0 and line["device_kind"] == "cpu"
