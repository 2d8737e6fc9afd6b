"""Procrustes alignment recovers known similarity transforms."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import procrustes


def _random_rotation(rng):
  q, r = np.linalg.qr(rng.normal(size=(3, 3)))
  q = q * np.sign(np.diag(r))
  if np.linalg.det(q) < 0:
    q[:, 0] *= -1
  return q


def test_recovers_a_random_similarity_transform():
  rng = np.random.default_rng(0)
  poses = rng.normal(size=(8, 17, 3)) * 300.0
  rotations = np.stack([_random_rotation(rng) for _ in range(8)])
  scales = rng.uniform(0.5, 2.0, 8)
  shifts = rng.normal(size=(8, 3)) * 1000.0
  targets = scales[:, None, None] * np.einsum("bij,bkj->bki", rotations, poses) + shifts[:, None]
  aligned, scale, rotation, translation = jax.jit(procrustes.similarity_transform)(
      jnp.asarray(poses, jnp.float32), jnp.asarray(targets, jnp.float32))
  chex.assert_trees_all_close(scale, jnp.asarray(scales, jnp.float32), rtol=1e-4)
  chex.assert_trees_all_close(rotation, jnp.asarray(rotations, jnp.float32), atol=1e-4)
  chex.assert_trees_all_close(translation / 1000.0, shifts / 1000.0, atol=1e-4)
  chex.assert_trees_all_close(aligned / 1000.0, targets / 1000.0, atol=1e-4)


def test_never_returns_a_reflection():
  rng = np.random.default_rng(1)
  pose = rng.normal(size=(17, 3))
  mirrored = pose * np.array([-1.0, 1.0, 1.0])
  _, _, rotation, _ = procrustes.similarity_transform(jnp.asarray(pose), jnp.asarray(mirrored))
  assert np.linalg.det(np.asarray(rotation)) > 0.99


def test_batch_axes_are_vmapped():
  x = jnp.ones((2, 3, 17, 3)) + jnp.arange(17.0)[:, None] * jnp.asarray([1.0, 2.0, -1.0])
  chex.assert_shape(procrustes.similarity_align(x, x + 5.0), (2, 3, 17, 3))
