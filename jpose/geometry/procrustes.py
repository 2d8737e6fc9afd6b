"""Similarity (Procrustes) alignment of one pose onto another, for protocol #2 errors.

`similarity_align` is written for one pose and vmapped over any leading batch axes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _align_one(predicted, target):
  """Aligns one (J, 3) pose to another with scale, rotation and translation.

  Uses the SVD solution of Umeyama (1991); the sign correction on the last singular
  vector keeps the rotation proper (det = +1), so a reflection is never returned.
  """
  mu_p = predicted.mean(axis=0)
  mu_t = target.mean(axis=0)
  p0 = predicted - mu_p
  t0 = target - mu_t
  norm_p = jnp.sqrt(jnp.sum(p0**2))
  norm_t = jnp.sqrt(jnp.sum(t0**2))
  # Normalising first keeps the SVD well conditioned for poses in mm.
  p0 = p0 / jnp.maximum(norm_p, 1e-12)
  t0 = t0 / jnp.maximum(norm_t, 1e-12)
  u, s, vt = jnp.linalg.svd(t0.T @ p0)
  d = jnp.sign(jnp.linalg.det(u @ vt))
  d = jnp.where(d == 0, 1.0, d)
  s = s.at[-1].multiply(d)
  u = u.at[:, -1].multiply(d)
  rotation = u @ vt  # maps centred predicted -> centred target.
  scale = jnp.sum(s) * norm_t / jnp.maximum(norm_p, 1e-12)
  aligned = scale * (predicted - mu_p) @ rotation.T + mu_t
  return aligned, scale, rotation, mu_t - scale * mu_p @ rotation.T


def similarity_align(predicted, target):
  """Aligns (..., J, 3) predictions to targets; returns the aligned predictions."""
  return similarity_transform(predicted, target)[0]


def similarity_transform(predicted, target):
  """Like `similarity_align`, also returning (scale, rotation, translation).

  aligned = scale * predicted @ rotation.T + translation, per pose.
  """
  fn = _align_one
  for _ in range(predicted.ndim - 2):
    fn = jax.vmap(fn)
  return fn(predicted, target)
