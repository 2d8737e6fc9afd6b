"""Sums per-pose errors by action and subject, the way published tables average them.

Human3.6M tables (Martinez 2017, VideoPose3D) report the action-wise mean: the mean of
the 15 per-action means. jpose reports that and the frame-wise mean over all poses.
"""

from __future__ import annotations

import collections
from typing import Iterable, Mapping

import numpy as np


def action_class(action: str) -> str:
  """'Walking 1' -> 'Walking': the trial number is not part of the action."""
  return action.split(" ")[0].split("_")[0]


class ErrorAccumulator:
  """Running (sum, count) of per-pose errors, keyed by (metric, action, subject).

  `update` takes host arrays; on several devices or hosts, gather the per-pose errors
  first (they are small) or `merge` the accumulators of each process.
  """

  def __init__(self):
    self._sum = collections.defaultdict(float)
    self._count = collections.defaultdict(int)

  def update(self, errors: Mapping[str, np.ndarray], actions: Iterable[str],
             subjects: Iterable[str], valid: np.ndarray | None = None) -> None:
    """Adds one batch. errors[m] has shape (N,); actions and subjects have N entries."""
    actions = np.asarray([action_class(a) for a in actions])
    subjects = np.asarray(list(subjects))
    mask = np.ones(len(actions), bool) if valid is None else np.asarray(valid, bool)
    for metric, values in errors.items():
      values = np.asarray(values, np.float64).reshape(-1)
      if values.shape[0] != actions.shape[0]:
        raise ValueError(f"errors['{metric}'] has {values.shape[0]} entries but "
                         f"{actions.shape[0]} actions were given")
      if not np.all(np.isfinite(values[mask])):
        raise FloatingPointError(f"non-finite values in errors['{metric}']")
      for key in set(zip(actions[mask], subjects[mask])):
        sel = mask & (actions == key[0]) & (subjects == key[1])
        self._sum[(metric,) + key] += float(values[sel].sum())
        self._count[(metric,) + key] += int(sel.sum())

  def merge(self, other: "ErrorAccumulator") -> None:
    for key, value in other._sum.items():
      self._sum[key] += value
      self._count[key] += other._count[key]

  @property
  def metrics(self) -> list[str]:
    return sorted({k[0] for k in self._sum})

  def _group(self, metric: str, axis: int) -> dict[str, float]:
    sums, counts = collections.defaultdict(float), collections.defaultdict(int)
    for key, value in self._sum.items():
      if key[0] == metric:
        sums[key[axis]] += value
        counts[key[axis]] += self._count[key]
    return {k: sums[k] / counts[k] for k in sorted(sums)}

  def per_action(self, metric: str) -> dict[str, float]:
    return self._group(metric, 1)

  def per_subject(self, metric: str) -> dict[str, float]:
    return self._group(metric, 2)

  def frame_count(self) -> int:
    metric = self.metrics[0]
    return sum(c for k, c in self._count.items() if k[0] == metric)

  def summary(self, metric: str) -> dict:
    """{'action_wise_mean', 'frame_wise_mean', 'per_action', 'per_subject'} for one metric."""
    per_action = self.per_action(metric)
    total = sum(v for k, v in self._sum.items() if k[0] == metric)
    count = sum(c for k, c in self._count.items() if k[0] == metric)
    return {
        "action_wise_mean": float(np.mean(list(per_action.values()))),
        "frame_wise_mean": total / count,
        "per_action": per_action,
        "per_subject": self.per_subject(metric),
    }
