"""How the image stages time a jitted function: compile on the first call, warm up, then
the median of timed calls, as images/s."""

from __future__ import annotations

import statistics
import time

import jax


def images_per_s(fn, args_per_step, batch_size: int, steps: int) -> dict:
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
