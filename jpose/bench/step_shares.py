"""Where an image trainer's step time goes: variants of one config's train step (a loss or
a part compiled out by a zero weight) timed in alternating rounds in one process, so that
each sees the same machine load; their differences are the parts' shares."""

from __future__ import annotations

import statistics
import time

import jax

from jpose.bench import train_step
from jpose.body import lbs


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
  steps = {name: list(train_step.compiled_train_step(c, batch_size)[:5])
           for name, c in (("heatmap", on), ("integral_only", off))}
  times = _alternating_rounds(steps, rounds)
  on_s, off_s = statistics.median(times["heatmap"]), statistics.median(times["integral_only"])
  return {"batch_size": batch_size, "rounds": rounds,
          "flops_heatmap": train_step.dispatch_flops(steps["heatmap"]),
          "flops_integral_only": train_step.dispatch_flops(steps["integral_only"]),
          "xla_flops_heatmap": train_step.xla_step_flops(steps["heatmap"][0]),
          "xla_flops_integral_only": train_step.xla_step_flops(steps["integral_only"][0]),
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
  steps = {name: list(train_step.compiled_train_step(c, batch_size)[:5])
           for name, c in variants.items()}
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
