"""Per-pose 3D errors in the units of the inputs (mm for Human3.6M).

Every function takes (..., J, 3) predictions and targets and returns one value per pose
(shape (...)), so callers can average per action, per subject or per frame.
"""

from __future__ import annotations

import jax.numpy as jnp

from jpose.geometry import procrustes

PCK_THRESHOLD_MM = 150.0


def mpjpe(predicted, target):
  """Mean per-joint position error (protocol #1): mean over joints of the L2 distance."""
  return jnp.mean(jnp.linalg.norm(predicted - target, axis=-1), axis=-1)


def p_mpjpe(predicted, target):
  """Protocol #2: MPJPE after similarity (Procrustes) alignment to the target."""
  return mpjpe(procrustes.similarity_align(predicted, target), target)


def n_mpjpe(predicted, target):
  """MPJPE after the least-squares scale alone (Rhodin et al. 2018)."""
  scale = jnp.sum(predicted * target, axis=(-2, -1), keepdims=True) / jnp.maximum(
      jnp.sum(predicted**2, axis=(-2, -1), keepdims=True), 1e-12)
  return mpjpe(scale * predicted, target)


def mpjve(predicted, target, time_axis: int = -3):
  """Mean per-joint velocity error of sequences (..., T, J, 3) -> (..., T - 1).

  Velocity is the frame-to-frame difference, so the units are mm per frame.
  """
  return mpjpe(jnp.diff(predicted, axis=time_axis), jnp.diff(target, axis=time_axis))


def pck3d(predicted, target, threshold: float = PCK_THRESHOLD_MM):
  """Fraction of joints whose error is at most `threshold` (3DPCK, Mehta et al. 2017)."""
  error = jnp.linalg.norm(predicted - target, axis=-1)
  return jnp.mean((error <= threshold).astype(jnp.float32), axis=-1)


def auc(predicted, target, max_threshold: float = PCK_THRESHOLD_MM, num_thresholds: int = 31):
  """Area under the 3DPCK curve for thresholds evenly spaced on [0, max_threshold]."""
  error = jnp.linalg.norm(predicted - target, axis=-1)[..., None, :]
  thresholds = jnp.linspace(0.0, max_threshold, num_thresholds)[:, None]
  return jnp.mean((error <= thresholds).astype(jnp.float32), axis=(-2, -1))


def all_pose_errors(predicted, target) -> dict[str, jnp.ndarray]:
  """The per-pose metrics jpose reports, keyed by name."""
  return {
      "mpjpe": mpjpe(predicted, target),
      "p_mpjpe": p_mpjpe(predicted, target),
      "n_mpjpe": n_mpjpe(predicted, target),
      "pck150": pck3d(predicted, target),
      "auc": auc(predicted, target),
  }
