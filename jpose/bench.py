"""Times a config's full compiled train step (forward, backward, optimizer update) on
random inputs of the right shapes.

  python -m jpose.bench --config martinez --batch-size 256 --steps 50 --json

With --json, prints one JSON line: config, params, batch_size, compile_s, step_ms
(median), samples_per_s, flops_per_step (XLA cost analysis), tflops_per_s,
peak_memory_bytes (null where the backend does not report it), device_kind, device_count.
"""

from __future__ import annotations

import json
import statistics
import time

from absl import app
from absl import flags
import jax
import numpy as np

import configs
from jpose.data import pipeline
from jpose.train import config_check
from jpose.train import sharding
from jpose.train import registry



def random_sequences(num_frames: int = 50_000, length: int = 1_000) -> pipeline.SequenceSet:
  """A stand-in split of the right shapes (for device-resident trainers)."""
  rng = np.random.default_rng(0)
  count = num_frames // length
  lengths = np.full(count, length)
  return pipeline.SequenceSet(
      pose_2d=rng.normal(500, 100, (num_frames, 17, 2)).astype(np.float32),
      pose_3d=rng.normal(0, 300, (num_frames, 17, 3)).astype(np.float32),
      root_depth=rng.uniform(3000, 6000, num_frames).astype(np.float32),
      seq_index=np.repeat(np.arange(count, dtype=np.int32), length),
      frame_index=np.tile(np.arange(length, dtype=np.int32), count),
      starts=np.arange(count) * length, lengths=lengths, subjects=["S1"] * count,
      actions=["Walking"] * count, cameras=["0"] * count,
      camera_c=np.full((count, 2), 512.0, np.float32),
      camera_f=np.full((count, 2), 1145.0, np.float32), fps=50.0)


def random_batch(shapes: dict, num_frames: int, rng: np.random.Generator) -> dict:
  batch = {}
  for key, spec in shapes.items():
    if np.issubdtype(spec.dtype, np.integer):
      batch[key] = rng.integers(0, num_frames, spec.shape).astype(spec.dtype)
    elif spec.dtype == np.bool_:
      batch[key] = rng.random(spec.shape) < 0.5
    else:
      batch[key] = rng.normal(size=spec.shape).astype(spec.dtype)
  return batch


def benchmark(config, batch_size: int, steps: int) -> dict:
  config_check.validate(config)
  sharding.check_batch_size(batch_size)
  data = random_sequences()
  norm = pipeline.NormStats(np.zeros((17, 2), np.float32), np.ones((17, 2), np.float32),
                            np.zeros((17, 3), np.float32), np.ones((17, 3), np.float32))
  trainer = registry.build(config, norm, num_train_frames=data.num_frames)
  mesh = sharding.make_mesh()
  resident = sharding.replicate(mesh, trainer.resident_data(data))
  batch = random_batch(trainer.batch_shapes(batch_size), data.num_frames,
                       np.random.default_rng(0))
  batch = sharding.to_global(mesh, batch)
  state_sharding = jax.tree.map(lambda _: sharding.replicated(mesh),
                                jax.eval_shape(trainer.init, jax.random.key(0)))
  state = jax.jit(trainer.init, out_shardings=state_sharding)(jax.random.key(config.seed))
  step_fn = jax.jit(trainer.train_step, out_shardings=(state_sharding, sharding.replicated(mesh)),
                    donate_argnums=0)
  t0 = time.perf_counter()
  compiled = step_fn.lower(state, batch, resident).compile()
  compile_s = time.perf_counter() - t0
  for _ in range(3):  # warm-up
    state, metrics = compiled(state, batch, resident)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch, resident)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  flops = _flops(compiled)
  memory = jax.devices()[0].memory_stats() or {}
  return {"config": None, "params": params, "batch_size": batch_size,
          "compile_s": round(compile_s, 3), "step_ms": round(step_s * 1e3, 3),
          "samples_per_s": round(batch_size / step_s, 1),
          "flops_per_step": flops,
          "tflops_per_s": round(flops / step_s / 1e12, 4) if flops else None,
          "peak_memory_bytes": memory.get("peak_bytes_in_use"),
          "device_kind": jax.devices()[0].device_kind, "device_count": jax.device_count()}


def _flops(compiled) -> int | None:
  """FLOPs of one compiled step from XLA's cost analysis (None where unavailable)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  return int(analysis["flops"]) if analysis and "flops" in analysis else None


def _define_flags() -> None:
  # Defined only when run as a program, so importing jpose.bench defines no flags.
  flags.DEFINE_string("config", None, "Config name in configs/ (e.g. martinez) or a path "
                      "to a config file; ':tiny' selects the tiny variant.")
  flags.DEFINE_integer("batch-size", None, "Global batch (default: the config's).")
  flags.DEFINE_integer("steps", 30, "Timed steps after compilation and warm-up.")
  flags.DEFINE_bool("json", False, "Print one JSON line instead of a sentence.")


def main(argv):
  del argv
  f = flags.FLAGS
  config = configs.load(f.config)
  batch_size = f["batch-size"].value or config.train.batch_size
  result = benchmark(config, batch_size, f.steps)
  result["config"] = f.config
  if f.json:
    print(json.dumps(result))
  else:
    print(f"{result['config']}: {result['params']:,} params, batch {batch_size}, "
          f"compile {result['compile_s']:.1f} s, {result['step_ms']:.2f} ms/step, "
          f"{result['samples_per_s']:,.0f} samples/s on {result['device_count']} x "
          f"{result['device_kind']}")


if __name__ == "__main__":
  _define_flags()
  flags.mark_flag_as_required("config")
  app.run(main)
