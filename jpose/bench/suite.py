"""`python -m jpose.bench --suite gpu`: every GPU target of the project in one run, one
table row per target (config, dtype, batch, samples/s, step ms, analytic MFU, compile s
cold and warm, peak memory), each row's JSON appended to a file as soon as it is done.

  python -m jpose.bench --suite gpu --out /tmp/suite.jsonl          # one GPU, <= 8 min
  python -m jpose.bench --suite gpu --tiny --out /tmp/suite.jsonl   # the same rows, tiny
                                                                    # configs, a CPU

`--tiny` runs the same code paths at tiny sizes, so CI keeps the suite itself working on
machines without a GPU. A row that fails is reported with its error and the suite goes
on; a row that would start after the time budget is skipped and says so.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import jax
import numpy as np

import configs
from jpose.bench import train_step

# The source checkout (jpose/bench/suite.py -> .): the main job runs there, on its configs/.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Row:
  """One target: what to run at full size, and at tiny size."""

  name: str
  config: str
  dtype: str
  batch: int
  steps: int
  steps_per_dispatch: int = 1
  kind: str = "train_step"  # train_step | predict | main_job
  overrides: tuple = ()  # (dotted config field, value) pairs
  tiny_batch: int = 4
  target: str = ""  # the issue's target, for the reader
  min_samples_per_s: float | None = None


HEATMAP_ON = (("integral.heatmap_weight", 1.0), ("integral.heatmap_start_step", 0))
NO_WEIGHTS = (("model.pretrained", "none"),)  # speed does not depend on the weights

GPU_ROWS = (
    Row("tcn243_bf16", "tcn243", "bfloat16", 1024, 100, 10,
        target=">= 415,000 samples/s (45% MFU)", min_samples_per_s=415_000),
    Row("tcn243_f32", "tcn243", "float32", 1024, 100, 10),
    Row("martinez_b64", "martinez", "float32", 64, 2000, 100,
        target="<= 120 us/step at batch 64", min_samples_per_s=64 / 120e-6),
    Row("martinez_b4096", "martinez", "float32", 4096, 500, 100),
    Row("integral_r50_bf16", "integral_r50", "bfloat16", 128, 20,
        overrides=HEATMAP_ON + NO_WEIGHTS, tiny_batch=2,
        target=">= 3,500 images/s with the heatmap loss", min_samples_per_s=3_500),
    Row("integral_r50_bf16_no_heatmap", "integral_r50", "bfloat16", 128, 20,
        overrides=NO_WEIGHTS, tiny_batch=2, target="heatmap share <= 15%"),
    Row("hmr_hybrid_bf16", "hmr_hybrid", "bfloat16", 64, 20, overrides=NO_WEIGHTS,
        tiny_batch=2, target="images/s at 224², batch 64"),
    Row("integral_depth72_bf16", "integral_depth72", "bfloat16", 64, 10,
        overrides=NO_WEIGHTS, tiny_batch=2, target="compiles and runs"),
    Row("integral_seed002_bf16", "integral_seed002", "bfloat16", 64, 10,
        overrides=NO_WEIGHTS, tiny_batch=2, target="compiles and runs"),
    Row("predict_r50_bf16", "integral_r50", "bfloat16", 256, 20, kind="predict",
        overrides=NO_WEIGHTS, tiny_batch=2, target="jpose.predict's stage 1 compiles"),
    Row("vae_unsupervised", "vae_unsupervised", "float32", 1024, 200, 100),
    Row("deepbase2", "deepbase2", "float32", 1024, 200, 100),
    Row("gan", "gan", "float32", 1024, 200, 100),
    Row("tcn81_bf16", "tcn81", "bfloat16", 1024, 50, 10),
    Row("main_job_tcn243", "tcn243", "bfloat16", 1024, 2000, 10, kind="main_job",
        target="loop >= 90% of the bench's rate; evaluation wall time"),
)


def _config(row: Row, tiny: bool):
  config = configs.load(f"{row.config}:tiny" if tiny else row.config)
  config.train.compute_dtype = row.dtype
  for field, value in row.overrides:
    group, key = field.split(".")
    if key in config[group]:
      setattr(config[group], key, value)
  k = min(row.steps_per_dispatch, 2) if tiny else row.steps_per_dispatch
  config.train.steps_per_dispatch = k
  config.train.num_steps = config.train.log_every = config.train.checkpoint_every = k
  config.train.eval_every = 0
  return config


def _train_step_row(row: Row, tiny: bool, cache_dir: str) -> dict:
  config = _config(row, tiny)
  batch = row.tiny_batch if tiny else row.batch
  steps = 2 * config.train.steps_per_dispatch if tiny else row.steps
  return train_step.benchmark(config, batch, steps, compile_cache_dir=cache_dir)


def _predict_row(row: Row, tiny: bool, cache_dir: str) -> dict:
  """images/s of the trainer's crop predictor (`jpose.predict`'s stage 1) on random
  crops: compile cold and warm, then the median of timed calls."""
  config = _config(row, tiny)
  batch = row.tiny_batch if tiny else row.batch
  _, state, _, _, trainer = train_step.train_step_inputs(config, batch)
  size = config.data.crop_size
  images = jax.numpy.asarray(np.random.default_rng(0).uniform(0, 1, (batch, size, size, 3)),
                             np.float32)
  predict = jax.jit(trainer.predict_crops)
  cold, warm, compiled = train_step.compile_cold_and_warm(
      lambda: predict.lower(state, images), cache_dir)
  jax.block_until_ready(compiled(state, images))
  times = []
  for _ in range(2 if tiny else row.steps):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(state, images))
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  memory = jax.devices()[0].memory_stats() or {}
  return {"dtype": row.dtype, "batch_size": batch, "step_ms": round(step_s * 1e3, 3),
          "samples_per_s": round(batch / step_s, 1), "compile_s": round(cold, 3),
          "compile_warm_s": round(warm, 3), "mfu": None,
          "peak_memory_bytes": memory.get("peak_bytes_in_use"),
          "program_memory_bytes": train_step.program_memory_bytes(compiled),
          "device_kind": jax.devices()[0].device_kind}


def _scalars(logdir: str) -> dict[str, list[tuple[float, int, float]]]:
  """tag -> [(wall time, step, value)] from a workdir's TensorBoard event files."""
  from tensorboard.backend.event_processing import event_file_loader
  out: dict[str, list] = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in event_file_loader.EventFileLoader(path).Load():
      for value in event.summary.value:  # the loader turns simple values into tensors
        if value.HasField("simple_value"):
          number = value.simple_value
        elif value.HasField("tensor") and value.tensor.float_val:
          number = value.tensor.float_val[0]
        else:
          continue
        out.setdefault(value.tag, []).append((event.wall_time, event.step, number))
  return out


def _main_job_row(row: Row, tiny: bool, cache_dir: str, bench_rate: float | None) -> dict:
  """`python -m jpose.main` on the built-in data, as a user runs it: the loop's samples/s
  (its log intervals after the first, which holds the compile) against the bench's
  rate for the same step, and the final evaluation's wall time."""
  steps = 4 if tiny else row.steps
  k = 2 if tiny else row.steps_per_dispatch
  workdir = tempfile.mkdtemp(prefix="jpose_suite_main_")
  command = [sys.executable, "-m", "jpose.main", "--config",
             f"configs/{row.config}.py" + (":tiny" if tiny else ""), "--workdir", workdir,
             f"--config.train.num_steps={steps}", f"--config.train.steps_per_dispatch={k}",
             f"--config.train.compute_dtype={row.dtype}",
             f"--config.train.log_every={k if tiny else 200}",
             f"--config.train.checkpoint_every={steps}"]
  if not tiny:
    command.append(f"--config.train.batch_size={row.batch}")
  env = dict(os.environ, JPOSE_COMPILATION_CACHE=cache_dir)
  t0 = time.perf_counter()
  done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t0
  if done.returncode != 0:
    raise RuntimeError(f"jpose.main exited {done.returncode}: {done.stderr[-2000:]}")
  scalars = _scalars(os.path.join(workdir, "tensorboard"))
  rates = [v for _, _, v in scalars.get("train/samples_per_s", [])]
  loop_rate = statistics.median(rates[1:]) if len(rates) > 1 else (rates[0] if rates else None)
  train_end = max((t for t, _, _ in scalars.get("train/loss", [])), default=None)
  eval_times = [t for tag, values in scalars.items() if tag.startswith(("test/", "eval/"))
                for t, _, _ in values]
  eval_s = (max(eval_times) - train_end) if eval_times and train_end else None
  batch = 16 if tiny else row.batch
  return {"dtype": row.dtype, "batch_size": batch, "steps": steps, "wall_s": round(wall, 1),
          "samples_per_s": round(loop_rate, 1) if loop_rate else None,
          "step_ms": round(batch / loop_rate * 1e3, 3) if loop_rate else None,
          "bench_samples_per_s": bench_rate,
          "device_busy": (round(loop_rate / bench_rate, 3)
                          if loop_rate and bench_rate and not tiny else None),
          "eval_wall_s": round(eval_s, 1) if eval_s is not None else None,
          "device_kind": jax.devices()[0].device_kind}


def run(tiny: bool, out_path: str | None, budget_s: float, only: str | None = None) -> list:
  """Runs the rows in order, printing each as it finishes; returns the results."""
  cache_dir = tempfile.mkdtemp(prefix="jpose_suite_cache_")
  start = time.perf_counter()
  results = []
  rows = [r for r in GPU_ROWS if not only or r.name in only.split(",")]
  for row in rows:
    elapsed = time.perf_counter() - start
    result = {"row": row.name, "config": row.config + (":tiny" if tiny else ""),
              "target": row.target}
    if elapsed > budget_s:
      result["skipped"] = f"time budget ({budget_s:.0f} s) spent"
    else:
      t0 = time.perf_counter()
      try:
        if row.kind == "predict":
          result.update(_predict_row(row, tiny, cache_dir))
        elif row.kind == "main_job":
          same = [r for r in results if r.get("config") == result["config"]
                  and r.get("dtype") == row.dtype and "samples_per_s" in r]
          result.update(_main_job_row(row, tiny, cache_dir,
                                      same[0]["samples_per_s"] if same else None))
        else:
          result.update(_train_step_row(row, tiny, cache_dir))
      except Exception as e:  # pylint: disable=broad-except  # a row fails, the suite goes on
        result["error"] = f"{type(e).__name__}: {str(e)[:500]}"
        result["traceback"] = traceback.format_exc()[-3000:]
      result["row_s"] = round(time.perf_counter() - t0, 1)
      if row.min_samples_per_s and result.get("samples_per_s") and not tiny:
        result["met"] = result["samples_per_s"] >= row.min_samples_per_s
    results.append(result)
    print(format_row(result), flush=True)
    if out_path:
      with open(out_path, "a") as f:
        f.write(json.dumps(result) + "\n")
  return results


HEADER = (f"{'row':<30} {'dtype':<8} {'batch':>6} {'samples/s':>12} {'step ms':>9} "
          f"{'MFU':>6} {'compile s':>9} {'warm s':>7} {'mem GB':>8}  note")


def format_row(r: dict) -> str:
  def num(key, fmt):
    value = r.get(key)
    return format(value, fmt) if isinstance(value, (int, float)) else "-"
  note = r.get("error") or r.get("skipped") or ""
  if "device_busy" in r and r["device_busy"] is not None:
    note = f"device busy {r['device_busy']:.0%}, eval {r.get('eval_wall_s')} s"
  elif "met" in r:
    note = ("met: " if r["met"] else "MISSED: ") + r["target"]
  peak = r.get("program_memory_bytes") or r.get("peak_memory_bytes")
  return (f"{r['row']:<30} {str(r.get('dtype', '-')):<8} {num('batch_size', 'd'):>6} "
          f"{num('samples_per_s', ',.0f'):>12} {num('step_ms', '.3f'):>9} "
          f"{num('mfu', '.3f'):>6} {num('compile_s', '.1f'):>9} {num('compile_warm_s', '.1f'):>7} "
          f"{(f'{peak / 1e9:.1f}' if peak else '-'):>8}  {note[:120]}")


def main(tiny: bool, out_path: str | None, budget_s: float | None, only: str | None) -> None:
  print(f"jpose.bench --suite gpu{' --tiny' if tiny else ''} on "
        f"{jax.device_count()} x {jax.devices()[0].device_kind}", flush=True)
  print(HEADER, flush=True)
  results = run(tiny, out_path, budget_s or (600.0 if tiny else 480.0), only)
  print("\n" + HEADER)
  for r in results:
    print(format_row(r))
  failed = [r["row"] for r in results if "error" in r]
  if failed:
    sys.exit(f"jpose.bench --suite: rows failed: {', '.join(failed)}")
