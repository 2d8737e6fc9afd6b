"""A config's full compiled train step (forward, backward, optimizer update) timed on random
inputs of the right shapes: its compile (cold and warm), step time, FLOPs (counted from the
jaxpr and by XLA), MFU and memory. Also lowers the step for a backend this machine lacks.
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np

from jpose import compile_cache
from jpose import flops as flop_count
from jpose import sharding
from jpose.bench import op_times
from jpose.data import pipeline
from jpose.train import config_check
from jpose.train import loop
from jpose.train import registry

# Dense peak TFLOP/s per chip, by (device_kind prefix, compute dtype). float32 on these
# GPUs is the TF32 tensor-core peak, which XLA's default matmul precision uses; TPUs run
# f32 matmuls as bf16 passes, so both dtypes use the bf16 peak.
PEAK_TFLOPS = {
    ("NVIDIA H100 PCIe", "bfloat16"): 756.0, ("NVIDIA H100 PCIe", "float32"): 378.0,
    ("NVIDIA H100", "bfloat16"): 989.0, ("NVIDIA H100", "float32"): 494.0,
    ("NVIDIA H200", "bfloat16"): 989.0, ("NVIDIA H200", "float32"): 494.0,
    ("NVIDIA A100", "bfloat16"): 312.0, ("NVIDIA A100", "float32"): 156.0,
    ("TPU v4", "bfloat16"): 275.0, ("TPU v4", "float32"): 275.0,
    ("TPU v5 lite", "bfloat16"): 197.0, ("TPU v5 lite", "float32"): 197.0,
}


def peak_tflops(device_kind: str, dtype: str) -> float | None:
  """The table's peak for the longest matching device_kind prefix (None if unknown)."""
  matches = [(len(kind), peak) for (kind, d), peak in PEAK_TFLOPS.items()
             if d == dtype and device_kind.startswith(kind)]
  return max(matches)[1] if matches else None


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
      camera_f=np.full((count, 2), 1145.0, np.float32),
      camera_up=np.tile(np.array([[0.0, -0.98, -0.2]], np.float32), (count, 1)), fps=50.0)


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


def train_step_inputs(config, batch_size: int, abstract: bool = False):
  """The config's train dispatch and its inputs on random batches of `batch_size`:
  (jitted dispatch, state, batch, resident, trainer). With `abstract`, the state and
  batch are shapes only (`jax.ShapeDtypeStruct`), for lowering without running."""
  config_check.validate(config)
  sharding.check_batch_size(batch_size)
  k = config.train.steps_per_dispatch
  data = random_sequences()
  norm = pipeline.placeholder_norm_stats()
  trainer = registry.build(config, norm, num_train_frames=data.num_frames)
  mesh = sharding.make_mesh()
  resident = sharding.replicate(mesh, trainer.resident_data(data))
  state_shapes = jax.eval_shape(trainer.init, jax.random.key(0))
  state_sharding = jax.tree.map(lambda _: sharding.replicated(mesh), state_shapes)
  step_fn = jax.jit(loop.multi_step(trainer.train_step, k),
                    out_shardings=(state_sharding, sharding.replicated(mesh)), donate_argnums=0)
  if abstract:
    batch = {key: jax.ShapeDtypeStruct((k,) + spec.shape, spec.dtype)
             for key, spec in trainer.batch_shapes(batch_size).items()}
    return step_fn, state_shapes, batch, resident, trainer
  rng = np.random.default_rng(0)
  batch = [random_batch(trainer.batch_shapes(batch_size), data.num_frames, rng)
           for _ in range(k)]
  batch = sharding.to_global(mesh, {key: np.stack([b[key] for b in batch]) for key in batch[0]},
                             stacked=True)
  state = jax.jit(trainer.init, out_shardings=state_sharding)(jax.random.key(config.seed))
  return step_fn, state, batch, resident, trainer


def lower_train_step(config, batch_size: int, platform: str):
  """The config's train dispatch lowered for `platform` ("cuda", "rocm", "tpu", "cpu")
  on any machine: what that backend would compile, without its hardware."""
  step_fn, state, batch, resident, _ = train_step_inputs(config, batch_size, abstract=True)
  return step_fn.trace(state, batch, resident).lower(lowering_platforms=(platform,))


def compile_cold_and_warm(lower, cache_dir: str):
  """Seconds to compile `lower()`'s program cold (into an empty persistent cache at
  cache_dir) and warm (lowered anew after JAX's in-memory caches are cleared, so the
  executable comes from that cache, as in a rerun). A Lowered object keeps its first
  executable, so each compile gets a fresh one. Returns (cold s, warm s, the warm
  executable)."""
  compile_cache.enable(cache_dir, min_compile_time_s=0.0)
  t0 = time.perf_counter()
  lower().compile()
  cold = time.perf_counter() - t0
  jax.clear_caches()
  t0 = time.perf_counter()
  compiled = lower().compile()
  return cold, time.perf_counter() - t0, compiled


def compiled_train_step(config, batch_size: int, compile_cache_dir: str | None = None):
  """The config's train dispatch compiled on random batches of `batch_size`: (compiled,
  state, batch, resident, trainer, compile seconds, warm compile seconds or None). With
  compile_cache_dir, the compile is timed cold and warm (`compile_cold_and_warm`)."""
  step_fn, state, batch, resident, trainer = train_step_inputs(config, batch_size)
  if compile_cache_dir:
    cold, warm, compiled = compile_cold_and_warm(
        lambda: step_fn.lower(state, batch, resident), compile_cache_dir)
    return compiled, state, batch, resident, trainer, cold, warm
  t0 = time.perf_counter()
  compiled = step_fn.lower(state, batch, resident).compile()
  return compiled, state, batch, resident, trainer, time.perf_counter() - t0, None


def benchmark(config, batch_size: int, steps: int, profile_dir: str | None = None,
              compile_cache_dir: str | None = None) -> dict:
  """Times train.steps_per_dispatch steps per dispatch; step_ms is per step. With
  profile_dir, also traces 5 more dispatches there and summarises their ops. With
  compile_cache_dir, also times a warm compile from a persistent cache there."""
  k = config.train.steps_per_dispatch
  compiled, state, batch, resident, trainer, compile_s, warm_s = compiled_train_step(
      config, batch_size, compile_cache_dir)
  for _ in range(3):  # warm-up
    state, metrics = compiled(state, batch, resident)
  jax.block_until_ready(metrics)
  times = []
  for _ in range(max(1, steps // k)):
    t0 = time.perf_counter()
    state, metrics = compiled(state, batch, resident)
    jax.block_until_ready(metrics)
    times.append((time.perf_counter() - t0) / k)
  step_s = statistics.median(times)
  params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  single = jax.tree.map(lambda b: b[0], batch)
  flops = train_step_flops(trainer, state, single, resident)
  # XLA's cost analysis counts a loop body once, whatever its trip count: take its FLOPs
  # of one step from the single-step program. It misses cuDNN/cuBLAS calls on a GPU.
  xla_flops = xla_step_flops(
      compiled if k == 1 else
      jax.jit(trainer.train_step).lower(state, single, resident).compile())
  memory = jax.devices()[0].memory_stats() or {}
  device_kind = jax.devices()[0].device_kind
  tflops = flops / step_s / 1e12 if flops else None
  peak = peak_tflops(device_kind, config.train.compute_dtype)
  profile = None
  if profile_dir:
    with jax.profiler.trace(profile_dir, create_perfetto_trace=True):
      for _ in range(5):
        state, metrics = compiled(state, batch, resident)
      jax.block_until_ready(metrics)
    profile = op_times.op_time_summary(profile_dir, 5 * k)
  return {"config": None, "dtype": config.train.compute_dtype, "params": params,
          "batch_size": batch_size, "steps_per_dispatch": k,
          "compile_s": round(compile_s, 3),
          **({"compile_warm_s": round(warm_s, 3)} if warm_s is not None else {}),
          "step_ms": round(step_s * 1e3, 3),
          "samples_per_s": round(batch_size / step_s, 1),
          "flops_per_step": flops, "flops_per_sample": round(flops / batch_size),
          "xla_flops": xla_flops,
          "tflops_per_s": round(tflops, 4) if tflops else None,
          "mfu": round(tflops / (peak * jax.device_count()), 4) if tflops and peak else None,
          "peak_memory_bytes": memory.get("peak_bytes_in_use"),
          "program_memory_bytes": program_memory_bytes(compiled),
          "device_kind": device_kind, "device_count": jax.device_count(),
          **({"profile_top_ops": profile} if profile else {})}


def program_memory_bytes(compiled) -> int | None:
  """Device memory one compiled program needs (arguments, outputs and temporaries, less
  donated aliases), from XLA's memory analysis; unlike the device's peak, which holds
  since the process started, it belongs to this program alone."""
  try:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
               - m.alias_size_in_bytes)
  except (AttributeError, NotImplementedError, TypeError):
    return None


def train_step_flops(trainer, state, batch, resident) -> int:
  """FLOPs of one train step, counted from its jaxpr (`jpose.flops`): the same on every
  device, unlike XLA's cost analysis, which skips cuDNN and cuBLAS calls on a GPU."""
  return flop_count.count(trainer.train_step, state, batch, resident).total


def dispatch_flops(run: list) -> int:
  """Per-step FLOPs of a `compiled_train_step` result's trainer, counted from the jaxpr."""
  _, state, batch, resident, trainer = run[:5]
  return train_step_flops(trainer, state, jax.tree.map(lambda b: b[0], batch), resident)


def xla_step_flops(compiled) -> int | None:
  """FLOPs of one compiled step from XLA's cost analysis (None where unavailable)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  return int(analysis["flops"]) if analysis and "flops" in analysis else None
