"""Where a profiled step's time goes: the top kinds of op in a `jax.profiler` perfetto
trace, in ms per step and share of op time (`--profile DIR`)."""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re


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
