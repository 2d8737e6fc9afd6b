"""Losses of the integral pose net: the integral L1 on soft-argmax joints (Sun et al. 2018)
and the Gaussian-cube heatmap cross-entropy (seed 002), both over (B, J, d, h, w) logits
and joints in voxel units (`jpose.geometry.heatmap`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jpose.geometry import heatmap

GAUSSIAN_PEAK = 1.0 / math.sqrt(2.0 * math.pi)


def integral_l1(pred: jax.Array, target: jax.Array, visible: jax.Array, has_3d: jax.Array,
                grid_shape: tuple[int, int, int]) -> jax.Array:
  """Sun et al.'s integral L1 loss, a scalar.

  pred, target: (B, J, 3) voxel units (x, y, z); visible: (B, J) {0, 1} gates x and y;
  has_3d: (B,) {0, 1} gates z (2D-only samples train x and y only).
  Both sides are normalised as Sun et al. normalise them, to [-0.5, 0.5] of the grid's
  extent on every axis (x / w - 0.5, ...; z is root-relative mm / D), so an error of one
  crop width and one depth range weigh the same. As in their `weighted_l1_loss`, the
  masked absolute errors are summed over joints and axes and averaged over the batch.
  Masked targets may be NaN (unannotated joints): they are selected away, not multiplied.
  """
  mask = jnp.concatenate([jnp.broadcast_to(visible[..., None], visible.shape + (2,)),
                          jnp.broadcast_to(has_3d[:, None, None], visible.shape + (1,))],
                         axis=-1) > 0
  # Replaced before the difference: a NaN inside a `where`'s unselected branch still
  # makes the gradient NaN (0 * NaN).
  target = jnp.where(mask, target, 0.0)
  error = jnp.abs(heatmap.voxel_to_normalized(pred, grid_shape)
                  - heatmap.voxel_to_normalized(target, grid_shape))
  return jnp.sum(jnp.where(mask, error, 0.0)) / pred.shape[0]


def _cube_window(centre: jax.Array, size: int, cube: int):
  """For one axis of `size` voxels: the start of the `min(cube, size)` window holding the
  cube of `cube` voxels around the voxel containing `centre` (clipped at the borders),
  the window's Gaussian factors exp(-delta^2 / 2) and their in-cube mask."""
  length = min(cube, size)
  half = cube // 2
  index = jnp.floor(jnp.clip(centre, -cube, size + cube)).astype(jnp.int32)
  start = jnp.clip(index - half, 0, size - length)
  voxels = start + jnp.arange(length)
  delta = voxels.astype(jnp.float32) + 0.5 - centre
  inside = jnp.abs(voxels - index) <= half
  return start, jnp.where(inside, jnp.exp(-0.5 * delta**2), 0.0)


def gaussian_cube_bce_one(logits: jax.Array, centre: jax.Array, cube: int = 11) -> jax.Array:
  """Mean over the d*h*w voxels of BCE(t, sigmoid(logits)) for one joint's volume.

  logits: (d, h, w) any float dtype (computed in float32); centre: (3,) the joint's
  (x, y, z) in voxel units. Target t = exp(-r^2 / 2) / sqrt(2 pi), r the distance from
  the voxel's centre to the joint's continuous position in voxel units, inside the
  cube x cube x cube voxels centred on the joint's voxel (clipped at the borders), and 0
  outside.

  BCE with logits is softplus(l) - t * l, and t = 0 outside the cube, so the volume's sum
  is sum(softplus(l)) over all voxels minus sum(t * l) over the cube's window, which is
  gathered with one `dynamic_slice`: no dense target is built.
  """
  logits = logits.astype(jnp.float32)
  shape = logits.shape  # (d, h, w) holds (z, y, x)
  windows = [_cube_window(centre[axis], shape[dim], cube) for dim, axis in enumerate((2, 1, 0))]
  starts = [w[0] for w in windows]
  sizes = [w[1].shape[0] for w in windows]
  gz, gy, gx = (w[1] for w in windows)
  target = GAUSSIAN_PEAK * gz[:, None, None] * gy[None, :, None] * gx[None, None, :]
  window = jax.lax.dynamic_slice(logits, starts, sizes)
  total = jnp.sum(jax.nn.softplus(logits)) - jnp.sum(target * window)
  return total / logits.size


def gaussian_cube_bce(logits: jax.Array, target: jax.Array, mask: jax.Array,
                      cube: int = 11) -> jax.Array:
  """Seed 002's heatmap loss over a batch, a scalar.

  logits: (B, J, d, h, w); target: (B, J, 3) voxel units; mask: (B, J) {0, 1} (the trainer
  passes visible * has_3d: the cube needs a depth, so 2D-only samples have none).
  Per-voxel sigmoid cross-entropy (each voxel a binary "joint here" prediction, the usual
  reading of "binary cross-entropy between target and predicted heatmap"), averaged over
  voxels, then over the unmasked joints.
  """
  safe = jnp.where(mask[..., None] > 0, target, 0.0)  # NaN targets would poison the floor
  per_joint = jax.vmap(jax.vmap(lambda l, c: gaussian_cube_bce_one(l, c, cube)))(logits, safe)
  mask = mask.astype(jnp.float32)
  return jnp.sum(per_joint * mask) / jnp.maximum(jnp.sum(mask), 1.0)
