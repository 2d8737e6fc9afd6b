"""Times a config's full compiled train step (forward, backward, optimizer update) on
random inputs of the right shapes, or (--model input_pipeline) how fast its grain input
pipeline delivers batches; or, with no config, a stage of the image layer (images/s).

  python -m jpose.bench --config martinez --batch-size 256 --steps 50 --json
  python -m jpose.bench --config tcn243 --batch-size 1024 --dtype bfloat16 --json
  python -m jpose.bench --config tcn243 --batch-size 64 --model input_pipeline --json
  python -m jpose.bench --config hmr_hybrid:cpu --model hmr_parts --steps 5 --json
  python -m jpose.bench --model image_pipeline --data lsp --manual_dir DIR --batch-size 32 --json
  python -m jpose.bench --model augment --size 256 --batch-size 32 --json
  python -m jpose.bench --model renderer --size 128 --batch-size 32 --json
  python -m jpose.bench --model integral_net --size 256 --batch-size 8 --json

The image stages print one JSON line with "model", "images_per_s" and their settings:
image_pipeline is the host's read + JPEG decode + batching (`image_pipeline`), augment the
jitted on-device augmentation (`augment`), renderer the jitted mannequin renderer on
synthetic_h36m poses (`rendered.render_batch`), and integral_net the jitted forward and
backward pass of a ResNet integral pose net (what a trainer's step costs, without the
optimizer), to set the others against.

With --json, prints one JSON line: config, dtype, params, batch_size, steps_per_dispatch,
compile_s, step_ms (median), samples_per_s, flops_per_step and flops_per_sample (counted
from the step's jaxpr by `jpose.flops`: the same on every device), xla_flops (XLA's cost
analysis, which on a GPU misses the cuDNN and cuBLAS calls), tflops_per_s, mfu (achieved
/ the device's peak for the dtype, null where the peak is not in PEAK_TFLOPS), peak_memory_bytes (null where the backend does not report it),
device_kind, device_count; with --profile DIR also profile_top_ops, [op, ms per step,
share of op time] from a jax.profiler trace.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import statistics
import time

from absl import flags
import jax
import numpy as np
import optax

import configs
from jpose import cli
from jpose import compile_cache
from jpose import export
from jpose import flops as flop_count
from jpose.body import lbs
from jpose.data import augment
from jpose.data import image_pipeline
from jpose.data import pipeline
from jpose.data import rendered
from jpose.data import resident
from jpose.geometry import heatmap
from jpose.losses import integral as integral_losses
from jpose.models import integral
from jpose.train import config_check
from jpose.train import loop
from jpose import sharding
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


def op_time_summary(trace_dir: str, steps: int, top: int = 8) -> list[list]:
  """[op kind, ms per step, share of op time] for the `top` kinds of op of the perfetto
  trace that `jax.profiler.trace(trace_dir, create_perfetto_trace=True)` wrote over
  `steps` steps.

  Where the trace has a device (a GPU's or TPU's `/device:` process), only the kernels on
  its streams count: the host's dispatch events (`PJRT_LoadedExecutable_Execute`,
  `cuGraphLaunch`, a `while` thunk) overlap them and measure nothing of the device. On a
  CPU the compiled program's thunks count, without Python frames and runtime bookkeeping
  (names with '::', the dispatch itself). Names lose their ".N" suffix (dot.4, dot.7 ->
  dot); long kernel names are cut to 100 characters."""
  paths = glob.glob(os.path.join(trace_dir, "**", "perfetto_trace.json.gz"), recursive=True)
  if not paths:
    raise FileNotFoundError(f"no perfetto_trace.json.gz under {trace_dir}")
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    trace = json.load(f)
  events = trace["traceEvents"] if isinstance(trace, dict) else trace
  meta = [e for e in events if e.get("ph") == "M"]
  device_pids = {e.get("pid") for e in meta if e.get("name") == "process_name"
                 and re.search(r"/device:(GPU|TPU)", str(e["args"].get("name", "")))}
  threads = {(e.get("pid"), e.get("tid")): str(e["args"].get("name", "")) for e in meta
             if e.get("name") == "thread_name"}
  # A device's streams (GPU) or its op line (TPU); its other lines repeat the same time.
  streams = {key for key, name in threads.items() if key[0] in device_pids
             and re.search(r"Stream|XLA Ops", name)}
  totals = collections.Counter()
  for e in events:
    name, where = e.get("name", ""), (e.get("pid"), e.get("tid"))
    if e.get("ph") != "X":
      continue
    if device_pids:
      if e.get("pid") not in device_pids or (streams and where not in streams):
        continue
    elif (threads.get(where) == "python" or name.startswith("$") or "::" in name
          or name.startswith(("PjitFunction", "Handle inputs", "Allocate"))):
      continue
    totals[re.sub(r"\.\d+$", "", name)[:100]] += e.get("dur", 0.0)
  whole = sum(totals.values()) or 1.0
  return [[name, round(us / 1e3 / steps, 3), round(us / whole, 3)]
          for name, us in totals.most_common(top)]


def _train_step_inputs(config, batch_size: int, abstract: bool = False):
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
  step_fn, state, batch, resident, _ = _train_step_inputs(config, batch_size, abstract=True)
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


def _compiled_train_step(config, batch_size: int, compile_cache_dir: str | None = None):
  """The config's train dispatch compiled on random batches of `batch_size`: (compiled,
  state, batch, resident, trainer, compile seconds, warm compile seconds or None). With
  compile_cache_dir, the compile is timed cold and warm (`compile_cold_and_warm`)."""
  step_fn, state, batch, resident, trainer = _train_step_inputs(config, batch_size)
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
  compiled, state, batch, resident, trainer, compile_s, warm_s = _compiled_train_step(
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
  xla_flops = _flops(compiled if k == 1 else
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
    profile = op_time_summary(profile_dir, 5 * k)
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


def _alternating_rounds(steps: dict[str, list], rounds: int) -> dict[str, list[float]]:
  """Seconds per step of each compiled variant ([compiled, state, batch, resident, ...],
  its state updated in place), timed in alternating rounds of 3 steps after a warm-up
  round, so that every variant sees the same machine load."""
  times = {name: [] for name in steps}
  for r in range(rounds + 1):
    for name, run in steps.items():
      compiled, state, batch, resident = run[:4]
      t0 = time.perf_counter()
      for _ in range(3):
        state, metrics = compiled(state, batch, resident)
      jax.block_until_ready(metrics)
      run[1] = state
      if r:  # round 0 warms up
        times[name].append((time.perf_counter() - t0) / 3)
  return times


def benchmark_heatmap_cost(config, batch_size: int, rounds: int) -> dict:
  """The Gaussian-cube heatmap loss's share of an integral train step: the config's step
  with the loss on from step 0 and with it off (weight 0: not compiled in), timed in
  alternating rounds of 3 steps in one process, so both see the same machine load."""
  on, off = config.copy_and_resolve_references(), config.copy_and_resolve_references()
  on.integral.heatmap_weight, on.integral.heatmap_start_step = 1.0, 0
  off.integral.heatmap_weight = 0.0
  steps = {name: list(_compiled_train_step(c, batch_size)[:5])
           for name, c in (("heatmap", on), ("integral_only", off))}
  times = _alternating_rounds(steps, rounds)
  on_s, off_s = statistics.median(times["heatmap"]), statistics.median(times["integral_only"])
  return {"batch_size": batch_size, "rounds": rounds,
          "flops_heatmap": _dispatch_flops(steps["heatmap"]),
          "flops_integral_only": _dispatch_flops(steps["integral_only"]),
          "xla_flops_heatmap": _flops(steps["heatmap"][0]),
          "xla_flops_integral_only": _flops(steps["integral_only"][0]),
          "step_ms_heatmap": round(on_s * 1e3, 1), "step_ms_integral_only": round(off_s * 1e3, 1),
          "heatmap_share": round((on_s - off_s) / on_s, 4),
          "round_shares": [round((a - b) / a, 4) for a, b in zip(times["heatmap"],
                                                                  times["integral_only"])]}


def benchmark_hmr_parts(config, batch_size: int, rounds: int) -> dict:
  """Where an HMR hybrid train step's time goes: the full step (rendering, ResNet,
  skinning, KPR, MR, critic), the step without the critic and without the critic and the
  silhouette loss (zero weights compile them out), timed in alternating rounds of 3
  steps in one process; plus skinning's forward and backward and the rendering alone.
  Shares are of the full step: critic = full - no critic, silhouette = no critic - neither."""
  variants = {"full": config.copy_and_resolve_references()}
  variants["no_critic"] = config.copy_and_resolve_references()
  variants["no_critic"].hmr.critic = False
  variants["kpr_only"] = variants["no_critic"].copy_and_resolve_references()
  variants["kpr_only"].hmr.mr_weight = 0.0
  steps = {name: list(_compiled_train_step(c, batch_size)[:5]) for name, c in variants.items()}
  times = _alternating_rounds(steps, rounds)
  ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
  trainer, resident = steps["full"][4], steps["full"][3]
  body = resident["body"]
  poses = resident["poses"][:batch_size]
  betas = jax.numpy.zeros((batch_size, 10))

  def skin_loss(pose, beta, model):
    vertices, joints = lbs.skin_batch(model, pose, beta)
    return jax.numpy.sum(vertices**2) + jax.numpy.sum(joints**2)
  skin = jax.jit(jax.value_and_grad(skin_loss, argnums=(0, 1)))
  render = jax.jit(lambda r, ids: trainer.render(r, r["poses"], ids, 0)["image"])
  ids = jax.numpy.arange(batch_size, dtype=jax.numpy.int32)
  part_ms = {}
  for name, fn, args in (("skinning_fwd_bwd", skin, (poses, betas, body)),
                         ("render", render, (resident, ids))):
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(max(3, rounds)):
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      best = min(best, time.perf_counter() - t0)
    part_ms[name] = best * 1e3
  full = ms["full"]
  return {"batch_size": batch_size, "rounds": rounds,
          "step_ms": {k: round(v, 1) for k, v in ms.items()},
          "part_ms": {k: round(v, 1) for k, v in part_ms.items()},
          "samples_per_s": round(batch_size / full * 1e3, 2),
          "shares": {"critic": round((full - ms["no_critic"]) / full, 3),
                     "silhouette_loss": round((ms["no_critic"] - ms["kpr_only"]) / full, 3),
                     "skinning_fwd_bwd": round(part_ms["skinning_fwd_bwd"] / full, 3),
                     "render": round(part_ms["render"] / full, 3)}}


def benchmark_input_pipeline(config, batch_size: int, steps: int) -> dict:
  """Batches/s and samples/s of the config's training input pipeline on its data
  (config.data), iterated as the loop does (grain, with prefetch). For temporal configs
  it also times a host-side gather of whole receptive-field windows, which a pipeline
  without device-resident data would need."""
  config_check.validate(config)
  data = pipeline.load_config_split(config, "train")
  stats = pipeline.compute_norm_stats(data)
  trainer = registry.build(config, stats, num_train_frames=data.num_frames)
  result = {"config": None, "model": "input_pipeline", "batch_size": batch_size,
            "dataset": config.data.name, "train_frames": data.num_frames,
            "batch_keys": list(trainer.batch_keys)}

  def batches_per_s(dataset) -> float:
    iterator = pipeline.make_iterator(dataset, config.data.prefetch)
    next(iterator)  # first batch: the iterator's start-up
    t0 = time.perf_counter()
    for _ in range(steps):
      next(iterator)
    return steps / (time.perf_counter() - t0)

  batches_s = batches_per_s(trainer.train_dataset(data, stats, batch_size, config.seed))
  result.update(batches_per_s=round(batches_s, 1), samples_per_s=round(batches_s * batch_size, 1))
  field = getattr(trainer, "field", None)
  if field:
    windows_s = batches_per_s(pipeline.make_dataset(data, stats, batch_size, seed=config.seed,
                                                    flip=config.data.flip, window=field,
                                                    causal=config.model.causal))
    result.update(receptive_field=field, host_windows_per_s=round(windows_s * batch_size, 1))
  return result


IMAGE_MODELS = ("image_pipeline", "augment", "renderer", "integral_net")


def _images_per_s(fn, args_per_step, batch_size: int, steps: int) -> dict:
  """Calls jitted `fn` on the first args (compiling it), warms it up, and times `steps`
  calls (one per element of args_per_step, cycled); images/s from the median call.
  first_call_s is the first call's time: compilation plus one run."""
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args_per_step[0]))
  first_call_s = time.perf_counter() - t0
  jax.block_until_ready(fn(*args_per_step[-1]))  # warm-up
  times = []
  for i in range(steps):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args_per_step[i % len(args_per_step)]))
    times.append(time.perf_counter() - t0)
  step_s = statistics.median(times)
  return {"first_call_s": round(first_call_s, 3), "step_ms": round(step_s * 1e3, 3),
          "images_per_s": round(batch_size / step_s, 2)}


def benchmark_image_pipeline(dataset: str, batch_size: int, steps: int, crop_size: int = 256,
                             threads: int = 0, data_dir: str | None = None,
                             manual_dir: str | None = None) -> dict:
  """Host images/s of the image input pipeline (read, parse, JPEG decode, stack) on a
  built image dataset, and of the JPEG decoders alone; threads=0 is one core."""
  result = image_pipeline.measure_throughput(
      [image_pipeline.Source(dataset)], batch_size=batch_size, crop_size=crop_size,
      num_batches=steps, num_threads=threads, data_dir=data_dir, manual_dir=manual_dir)
  return {"model": "image_pipeline", "dataset": dataset, "batch_size": batch_size,
          "size": crop_size, "threads": threads,
          "images_per_s": round(result["images_per_s"], 1),
          "decode_simplejpeg_images_per_s": round(result["decode_simplejpeg_images_per_s"], 1),
          "decode_pillow_images_per_s": round(result["decode_pillow_images_per_s"], 1)}


def benchmark_augment(size: int, batch_size: int, steps: int) -> dict:
  """images/s of the jitted on-device augmentation (seed 002's ops) of a uint8 batch."""
  rate = augment.measure_throughput(size=size, batch=batch_size, repeats=steps)
  return {"model": "augment", "params": "SEED_002", "batch_size": batch_size, "size": size,
          "images_per_s": round(rate, 1)}


def benchmark_renderer(size: int, batch_size: int, steps: int,
                       data_dir: str | None = None) -> dict:
  """images/s of `rendered.render_batch` on synthetic_h36m poses (built if missing), a
  fresh random set of frames each call."""
  split = pipeline.load_split("synthetic_h36m", "train", data_dir=data_dir)
  data = jax.device_put(resident.from_sequences(split))
  rng = np.random.default_rng(0)
  args = [(data, jax.numpy.asarray(rng.integers(0, split.num_frames, batch_size), np.int32),
           jax.random.key(i)) for i in range(4)]
  render = jax.jit(lambda d, ids, key: rendered.render_batch(d, ids, key, size=size)["image"])
  return {"model": "renderer", "batch_size": batch_size, "size": size,
          **_images_per_s(render, args, batch_size, steps)}


def benchmark_integral_net(size: int, batch_size: int, steps: int, resnet_depth: int = 50,
                           depth_bins: int = 64) -> dict:
  """images/s of a ResNet integral pose net's jitted train step on one fixed batch:
  forward + backward (train-mode batch norm, soft-argmax, integral L1 loss) and an Adam
  update of every parameter. No rendering or augmentation (`--config` times those)."""
  model = integral.IntegralPoseNet(resnet_depth=resnet_depth, depth_bins=depth_bins)
  rng = np.random.default_rng(0)
  images = jax.numpy.asarray(rng.uniform(0, 1, (batch_size, size, size, 3)), np.float32)
  grid = (depth_bins, size // 4, size // 4)
  target = jax.numpy.asarray(rng.uniform(0, size // 4, (batch_size, 17, 3)), np.float32)
  visible = jax.numpy.ones((batch_size, 17))
  has_3d = jax.numpy.ones((batch_size,))
  variables = jax.jit(model.init)(jax.random.key(0), images[:1])
  optimizer = optax.adam(1e-3)

  def loss(params, batch_stats, images):
    logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                                  train=True, mutable=["batch_stats"])
    joints = heatmap.soft_argmax_volumes(logits)
    return (integral_losses.integral_l1(joints, target, visible, has_3d, grid),
            updates["batch_stats"])

  @jax.jit
  def step(params, opt_state, batch_stats, images):
    grads, batch_stats = jax.grad(loss, has_aux=True)(params, batch_stats, images)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, batch_stats

  params = variables["params"]
  args = [(params, optimizer.init(params), variables["batch_stats"], images)]
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  return {"model": "integral_net", "resnet_depth": resnet_depth, "params": count,
          "batch_size": batch_size, "size": size,
          "flops_per_step": flop_count.count(step, *args[0]).total,
          **_images_per_s(step, args, batch_size, steps)}


def benchmark_exported(config, steps: int) -> dict:
  """Latency of the config's model as `jpose.export` serialises it, deserialised and called
  as a user would (random parameters: the time does not depend on their values).

  Frame-wise models: one frame, and a batch of 1,024 frames. The TCN: one receptive-field
  window (its latency for a live feed, which must wait for that many frames), and a
  2,430-frame clip per frame.
  """
  trainer = registry.build(config, pipeline.compute_norm_stats(
      random_sequences(5_000, 500), config.data.keypoints, config.data.frame_2d), 5_000)
  state = jax.jit(trainer.init)(jax.random.key(config.seed))
  t0 = time.perf_counter()
  exported = export.export_model(config, trainer, state, platforms=(jax.default_backend(),))
  lift = jax.export.deserialize(exported.serialize()).call
  export_s = time.perf_counter() - t0
  rng = np.random.default_rng(0)
  field = export.receptive_field(config)

  def timed(shape) -> float:
    keypoints = np.concatenate([rng.uniform(200, 800, shape + (17, 2)),
                                np.full(shape + (17, 1), 0.9)], -1).astype(np.float32)
    for _ in range(3):
      jax.block_until_ready(lift(keypoints))
    times = []
    for _ in range(steps):
      t = time.perf_counter()
      jax.block_until_ready(lift(keypoints))
      times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3

  result = {"receptive_field": field, "export_s": export_s,
            "serialized_mb": len(exported.serialize()) / 1e6,
            "device_kind": jax.devices()[0].device_kind}
  if config.train.trainer == "temporal":
    result["window_ms"] = timed((1, field))
    clip = timed((1, 2_430))
    result["clip_ms_per_frame"] = clip / 2_430
  else:
    result["frame_ms"] = timed((1,))
    result["batch_1024_ms_per_frame"] = timed((1_024,)) / 1_024
  return result


def _dispatch_flops(run: list) -> int:
  """Per-step FLOPs of a `_compiled_train_step` result's trainer, counted from the jaxpr."""
  _, state, batch, resident, trainer = run[:5]
  return train_step_flops(trainer, state, jax.tree.map(lambda b: b[0], batch), resident)


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


def _flops(compiled) -> int | None:
  """FLOPs of one compiled step from XLA's cost analysis (None where unavailable)."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else None
  return int(analysis["flops"]) if analysis and "flops" in analysis else None


def _define_flags() -> None:
  # Defined only when run as a program, so importing jpose.bench defines no flags.
  flags.DEFINE_string("config", None, "Config name in configs/ (e.g. martinez) or a path "
                      "to a config file; ':tiny' selects the tiny variant. Required for "
                      "train_step and input_pipeline.")
  flags.DEFINE_enum("model", "train_step", ["train_step", "input_pipeline", "heatmap_cost",
                                           "hmr_parts",
                                           "exported", *IMAGE_MODELS],
                    "What to time: the compiled train step, the grain input pipeline, the "
                    "heatmap loss's share of an integral step (--steps rounds), the "
                    "jpose.export model's latency, or an image-layer stage (images/s, no "
                    "config).")
  flags.DEFINE_integer("batch-size", None, "Global batch (default: the config's).")
  flags.DEFINE_integer("steps", 30, "Timed steps (or batches) after compilation and warm-up.")
  flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"],
                    "Compute dtype (default: the config's train.compute_dtype).")
  flags.DEFINE_integer("steps-per-dispatch", None,
                       "Train steps per compiled dispatch (default: the config's).")
  flags.DEFINE_string("data", None, "input_pipeline: dataset name (default: the config's); "
                      "image_pipeline: the image dataset (default lsp).")
  flags.DEFINE_string("manual_dir", None, "image_pipeline: source files to build the "
                      "dataset from if it is not built yet.")
  flags.DEFINE_string("data_dir", None, "image_pipeline, renderer: tfds folder (default "
                      "$TFDS_DATA_DIR or ~/tensorflow_datasets).")
  flags.DEFINE_integer("size", 256, "Image stages: crop side in pixels.")
  flags.DEFINE_integer("threads", 0, "image_pipeline: grain threads (0: one core, no "
                       "prefetch).")
  flags.DEFINE_integer("resnet-depth", 50, "integral_net: ResNet depth (18, 34, 50, ...).")
  flags.DEFINE_string("profile", None, "Trace 5 more dispatches into this folder with "
                      "jax.profiler and add the top ops' time per step to the result.")
  flags.DEFINE_bool("json", False, "Print one JSON line instead of a sentence.")
  flags.DEFINE_enum("suite", None, ["gpu"], "Run a whole suite of targets "
                    "(jpose.bench_suite) instead of one benchmark.")
  flags.DEFINE_bool("tiny", False, "--suite: the same rows with tiny configs (a CPU).")
  flags.DEFINE_string("out", None, "--suite: append each row's JSON to this file.")
  flags.DEFINE_float("budget_s", None, "--suite: rows that would start after this many "
                     "seconds are skipped (default 480, or 600 with --tiny).")
  flags.DEFINE_string("rows", None, "--suite: only these rows (comma-separated names).")


def benchmark_image_model(model: str, batch_size: int, steps: int) -> dict:
  """One image-layer stage, from the command line's flags."""
  f = flags.FLAGS
  if model == "image_pipeline":
    return benchmark_image_pipeline(f.data or "lsp", batch_size, steps, f.size, f.threads,
                                    f.data_dir, f.manual_dir)
  if model == "augment":
    return benchmark_augment(f.size, batch_size, steps)
  if model == "renderer":
    return benchmark_renderer(f.size, batch_size, steps, f.data_dir)
  return benchmark_integral_net(f.size, batch_size, steps, f["resnet-depth"].value)


def main(argv):
  del argv
  f = flags.FLAGS
  if f.suite:
    from jpose import bench_suite  # pylint: disable=import-outside-toplevel  # it imports bench
    bench_suite.main(f.tiny, f.out, f.budget_s, f.rows)
    return
  if f.model in IMAGE_MODELS:
    result = benchmark_image_model(f.model, f["batch-size"].value or 32, f.steps)
    result["device_kind"] = jax.devices()[0].device_kind
    if f.json:
      print(json.dumps(result))
    else:
      print(f"{f.model}: {result['images_per_s']:,.1f} images/s at {result['size']}x"
            f"{result['size']}, batch {result['batch_size']}")
    return
  if not f.config:
    raise cli.UsageError(f"--model {f.model}", "needs --config", "add --config NAME")
  try:
    config = configs.load(f.config)
  except ValueError as e:
    raise cli.UsageError(f"--config {f.config}", str(e),
                         "give a name in configs/ (e.g. martinez, tcn243:tiny) or a path") from e
  batch_size = f["batch-size"].value or config.train.batch_size
  if f.dtype:
    config.train.compute_dtype = f.dtype
  if f["steps-per-dispatch"].value:
    config.train.steps_per_dispatch = f["steps-per-dispatch"].value
    config.train.num_steps = config.train.log_every = config.train.steps_per_dispatch
    config.train.checkpoint_every, config.train.eval_every = config.train.num_steps, 0
  if f.data:
    config.data.name = f.data
  if f.model == "input_pipeline":
    result = benchmark_input_pipeline(config, batch_size, f.steps)
  elif f.model == "heatmap_cost":
    result = benchmark_heatmap_cost(config, batch_size, f.steps)
  elif f.model == "hmr_parts":
    result = benchmark_hmr_parts(config, batch_size, f.steps)
  elif f.model == "exported":
    result = benchmark_exported(config, f.steps)
  else:
    result = benchmark(config, batch_size, f.steps, f.profile)
  result["config"] = f.config
  if f.json:
    print(json.dumps(result))
  elif f.model == "heatmap_cost":
    print(f"{result['config']}: the heatmap loss is {100 * result['heatmap_share']:.1f}% of a "
          f"train step ({result['step_ms_heatmap']:.0f} against "
          f"{result['step_ms_integral_only']:.0f} ms at batch {batch_size})")
  elif f.model == "hmr_parts":
    print(f"{result['config']}: {result['samples_per_s']:.1f} images/s at batch {batch_size}; "
          "shares of the step: " + ", ".join(f"{k} {100 * v:.0f}%"
                                             for k, v in result["shares"].items()))
  elif f.model == "exported":
    print(f"{result['config']} exported ({result['serialized_mb']:.1f} MB): " + (
        f"{result['window_ms']:.2f} ms per {result['receptive_field']}-frame window, "
        f"{result['clip_ms_per_frame']:.3f} ms per frame of a 2,430-frame clip"
        if "window_ms" in result else
        f"{result['frame_ms']:.2f} ms per frame, {result['batch_1024_ms_per_frame']:.4f} ms "
        "per frame in batches of 1,024") + f" on {result['device_kind']}")
  elif f.model == "input_pipeline":
    print(f"{result['config']} input pipeline on {result['dataset']}: "
          f"{result['batches_per_s']:,.0f} batches/s of {batch_size} "
          f"({result['samples_per_s']:,.0f} samples/s)")
  else:
    print(f"{result['config']}: {result['params']:,} params, batch {batch_size}, "
          f"{result['dtype']}, compile {result['compile_s']:.1f} s, "
          f"{result['step_ms']:.2f} ms/step, {result['samples_per_s']:,.0f} samples/s on "
          f"{result['device_count']} x {result['device_kind']}")


if __name__ == "__main__":
  _define_flags()
  cli.run("jpose.bench", main, cache_compiles=False)  # it times cold compiles
