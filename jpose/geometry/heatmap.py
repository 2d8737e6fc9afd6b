"""Voxel-grid coordinates of the integral pose net's (d, h, w) heatmap volumes, and the
soft-argmax that turns one volume of logits into a joint (Sun et al. 2018).

Voxel units: voxel (k, i, j) = (depth bin, row, column) spans [j, j + 1] x [i, i + 1] x
[k, k + 1], centre (j + 0.5, i + 0.5, k + 0.5) as (x, y, z), so a (d, h, w) grid covers
[0, w] x [0, h] x [0, d]. This is the crop-pixel convention scaled by the stride
S / w: voxel column j's centre lies at crop x = (j + 0.5) * stride. Depth: the d bins
split [-D/2, D/2] mm (root-relative camera z) evenly; bin k's centre is
((k + 0.5) / d - 0.5) * D.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jpose.geometry import skeleton


def _expectation(marginal: jax.Array) -> jax.Array:
  """sum_k marginal[k] * (k + 0.5), the voxel-centre coordinate's expectation."""
  centres = jnp.arange(marginal.shape[0], dtype=marginal.dtype) + 0.5
  return jnp.dot(marginal, centres)


def soft_argmax_3d(volume: jax.Array) -> jax.Array:
  """(d, h, w) logits -> (3,) expected (x, y, z) in voxel units.

  softmax over all d*h*w voxels, then one 1-D expectation per axis on the marginal (the
  softmax summed over the other two axes): no (d, h, w, 3) coordinate grid. bf16 and
  float16 inputs are computed in float32 (float64 stays float64); the max is subtracted
  first, so logits of +-1e4 give finite values and gradients.
  """
  logits = volume.astype(jnp.promote_types(volume.dtype, jnp.float32))
  weights = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits)))
  total = jnp.sum(weights)
  x = _expectation(jnp.sum(weights, axis=(0, 1)))
  y = _expectation(jnp.sum(weights, axis=(0, 2)))
  z = _expectation(jnp.sum(weights, axis=(1, 2)))
  return jnp.stack([x, y, z]) / total


def soft_argmax_volumes(volumes: jax.Array) -> jax.Array:
  """(..., d, h, w) logits (e.g. (B, J, d, h, w)) -> (..., 3) voxel units, vmapped."""
  fn = soft_argmax_3d
  for _ in range(volumes.ndim - 3):
    fn = jax.vmap(fn)
  return fn(volumes)


def voxel_to_crop(coords: jax.Array, grid_shape: tuple[int, int, int], crop_size: float,
                  depth_range_mm: float) -> jax.Array:
  """(..., 3) voxel units -> (..., 3): x, y in crop pixels, z root-relative in mm.

  grid_shape: (d, h, w) of the volume; crop_size: S of the S x S crop it was predicted
  from (stride S / w); depth_range_mm: D, the extent of the depth axis.
  """
  d, h, w = grid_shape
  scale = jnp.asarray([crop_size / w, crop_size / h, depth_range_mm / d], jnp.float32)
  offset = jnp.asarray([0.0, 0.0, -depth_range_mm / 2], jnp.float32)
  return coords.astype(jnp.float32) * scale + offset


def crop_to_voxel(joints: jax.Array, grid_shape: tuple[int, int, int], crop_size: float,
                  depth_range_mm: float) -> jax.Array:
  """The inverse of `voxel_to_crop`: (..., 3) (x px, y px, z mm) -> voxel units."""
  d, h, w = grid_shape
  scale = jnp.asarray([w / crop_size, h / crop_size, d / depth_range_mm], jnp.float32)
  offset = jnp.asarray([0.0, 0.0, depth_range_mm / 2], jnp.float32)
  return (joints.astype(jnp.float32) + offset) * scale


def voxel_to_normalized(coords: jax.Array, grid_shape: tuple[int, int, int]) -> jax.Array:
  """(..., 3) voxel units -> Sun et al.'s normalised coordinates in [-0.5, 0.5]^3
  (x / w - 0.5, y / h - 0.5, z / d - 0.5; z is then root-relative mm / D)."""
  d, h, w = grid_shape
  return coords.astype(jnp.float32) / jnp.asarray([w, h, d], jnp.float32) - 0.5


def crop_to_image(points: jax.Array, crop: jax.Array) -> jax.Array:
  """(B, J, 2) crop pixels -> (B, J, 2) original image pixels, through the inverse of each
  example's (B, 2, 3) crop affine (original pixels -> crop pixels)."""
  linear, shift = crop[:, :, :2], crop[:, :, 2]
  return jnp.einsum("bij,bkj->bki", jnp.linalg.inv(linear), points - shift[:, None, :])


def crop_to_camera(joints: jax.Array, crop: jax.Array, root_depth: jax.Array,
                   focal: jax.Array, principal: jax.Array, root: int = 0) -> jax.Array:
  """(B, J, 3) (x, y crop pixels, z root-relative mm) -> (B, J, 3) root-relative camera
  coordinates, mm, with the given (ground-truth) root depth (Sun et al.'s evaluation).

  crop: (B, 2, 3) original pixels -> crop pixels; root_depth: (B,); focal, principal:
  (B, 2). Each joint is lifted by the undistorted pinhole at depth root_depth + z, and
  the lifted root is subtracted.
  """
  pixels = crop_to_image(joints[..., :2], crop)
  depth = root_depth[:, None] + joints[..., 2]
  xy = (pixels - principal[:, None, :]) * depth[..., None] / focal[:, None, :]
  camera = jnp.concatenate([xy, depth[..., None]], axis=-1)
  return camera - camera[:, root:root + 1]


def mirror_crop_joints(joints: jax.Array, crop_size: float) -> jax.Array:
  """(..., 17, D) H36M-17 joints predicted on a horizontally mirrored S x S crop (x, y crop
  pixels, then any per-joint values such as depth) -> the same joints on the crop itself:
  x -> S - x and left and right labels swapped; the rest is unchanged.

  With pixel centres at j + 0.5, mirroring the columns (j -> S - 1 - j) maps continuous x
  to S - x exactly. (Sun et al.'s code puts pixel centres at j, where it is S - 1 - x.)
  """
  return skeleton.mirror(joints, crop_size / 2)
