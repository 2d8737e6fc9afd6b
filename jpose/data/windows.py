"""Receptive-field windows over concatenated sequences: the frame offsets of a window and
the edge-replicated frame index of each window. Written once for numpy (host pipelines,
figures) and jnp (device-resident gathers): both array types have `.clip`.
"""

from __future__ import annotations

import numpy as np


def window_offsets(field: int, causal: bool) -> np.ndarray:
  """Frame offsets of a receptive field around (or, causal, ending at) its target."""
  return np.arange(field) - (field - 1 if causal else field // 2)


def window_index(frame_ids, offsets, first, last):
  """(B,) flat frame ids -> (B, L) flat indices of their windows, clipped to each frame's
  sequence [first, last] (edge replication: a window never reads a neighbouring sequence).

  `frame_ids`, `first` and `last` are all numpy or all jnp arrays of shape (B,).
  """
  return (frame_ids[:, None] + offsets[None, :]).clip(first[:, None], last[:, None])


def chunk_sequence(pose: np.ndarray, field: int, chunk: int, causal: bool) -> np.ndarray:
  """(T, ...) -> (ceil(T / chunk), chunk + field - 1, ...) edge-padded input chunks whose
  dilated-form outputs, concatenated, are the T per-frame predictions (then more)."""
  before = field - 1 if causal else field // 2
  count = -(-pose.shape[0] // chunk)
  after = count * chunk - pose.shape[0] + (field - 1 - before)
  padded = np.pad(pose, [(before, after)] + [(0, 0)] * (pose.ndim - 1), mode="edge")
  return np.stack([padded[i * chunk: i * chunk + chunk + field - 1] for i in range(count)])
