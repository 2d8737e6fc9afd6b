"""Turns an ErrorAccumulator into the published-table layout: console, markdown, JSON.

eval_results.json:
  {"step": int, "protocol1": {"action_wise_mean", "frame_wise_mean", "per_action",
   "per_subject"}, "protocol2": {...}, "n_mpjpe": {...}, "num_frames": int, ...}
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

from jpose.metrics import accumulator

# Report key -> accumulator metric.
PROTOCOLS = {"protocol1": "mpjpe", "protocol2": "p_mpjpe", "n_mpjpe": "n_mpjpe",
             "mpjve": "mpjve"}


def results_dict(acc: accumulator.ErrorAccumulator, step: int, **extra) -> dict:
  out = {"step": int(step)}
  for key, metric in PROTOCOLS.items():
    if metric in acc.metrics:
      out[key] = acc.summary(metric)
  out["num_frames"] = acc.frame_count()
  out.update(extra)
  return out


def format_table(header: Sequence[str], rows: Iterable[Sequence[str]],
                 right_aligned: bool = False) -> str:
  """A markdown table: the header row, its rule, then one line a row of cells.
  right_aligned: every column but the first (the rows' names) is right-aligned."""
  rule = ["---"] + ["---:" if right_aligned else "---"] * (len(header) - 1)
  lines = ["| " + " | ".join(cells) + " |" for cells in [header, *rows]]
  return "\n".join([lines[0], "|" + "|".join(rule) + "|", *lines[1:]])


def pose_error_tables(results: dict) -> str:
  """One row per protocol, one column per action, then the two means (mm); below it one
  column per subject."""
  keys = [k for k in PROTOCOLS if k in results]
  actions = sorted(results[keys[0]]["per_action"])
  by_action = format_table(
      ["protocol", *actions, "action-wise mean", "frame-wise mean"],
      [[key, *(f"{results[key]['per_action'][a]:.1f}" for a in actions),
        f"{results[key]['action_wise_mean']:.1f}", f"{results[key]['frame_wise_mean']:.1f}"]
       for key in keys])
  subjects = sorted(results[keys[0]]["per_subject"])
  by_subject = format_table(
      ["protocol", *subjects],
      [[key, *(f"{results[key]['per_subject'][s]:.1f}" for s in subjects)] for key in keys])
  return by_action + "\n\n" + by_subject


def write(results: dict, workdir: str) -> tuple[str, str]:
  """Writes eval_results.json and eval_results.md into workdir; returns their paths."""
  os.makedirs(workdir, exist_ok=True)
  json_path = os.path.join(workdir, "eval_results.json")
  md_path = os.path.join(workdir, "eval_results.md")
  tmp = json_path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(results, f, indent=2)
  os.replace(tmp, json_path)
  with open(md_path, "w") as f:
    f.write(f"# Evaluation at step {results['step']} ({results['num_frames']} poses, mm)\n\n")
    f.write(pose_error_tables(results) + "\n")
  return json_path, md_path
