"""jpose.bench.op_times: a profile's ops per step, from the trace's device streams (a GPU)
or the compiled program's thunks (a CPU)."""

import gzip
import json

from jpose.bench import op_times


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
  assert op_times.op_time_summary(str(tmp_path), steps=2) == [["dot", 2.0, 0.8],
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
  assert op_times.op_time_summary(str(tmp_path), steps=2) == [[gemm, 1.5, 0.75],
                                                              ["loop_select_fusion", 0.5, 0.25]]
