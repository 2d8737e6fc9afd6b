"""Losses of the HMR hybrid (seed 001): keypoint reprojection (KPR), the silhouette
chamfer loss (mesh reprojection, MR) and the WGAN-GP gradient penalty.

Coordinates are HMR's normalised crop coordinates, [-1, 1] across the crop (x right,
y down): crop pixel p <-> 2 p / S - 1, with pixel centres at j + 0.5.

The MR loss (seed eq. 1) is a chamfer distance between the projected mesh and the
ground-truth silhouette S_GT, made differentiable in the vertices this way:
  forward:  the mean over projected vertices v of d(v, S_GT)^2, where d is S_GT's exact
            Euclidean distance transform (0 inside), sampled bilinearly at v;
  reverse:  the mean over K points x drawn from S_GT's pixels of min_v |x - v|^2, the
            squared distance to the nearest projected vertex (a fixed subset of them);
both in normalised units squared. Means rather than the seed's sums, so the weight of
each term does not change with the vertex count or the silhouette's area. Projected
vertices stand in for the predicted silhouette's points: a mesh's vertices cover its
silhouette densely at these crop sizes (ANNY's 13,380 over a 64 px body).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def to_normalised(points_px, size: int):
  """Crop pixels -> [-1, 1] normalised coordinates."""
  return points_px * (2.0 / size) - 1.0


def to_pixels(points, size: int):
  """[-1, 1] normalised coordinates -> crop pixels."""
  return (points + 1.0) * (size / 2.0)


def _visible_abs_errors(projected, target, visible):
  """(B, J, 2) |projected - target| on visible joints, 0 elsewhere; (B,) visible
  coordinates. Unannotated targets may hold anything (NaN included): selected away."""
  mask = visible[..., None] > 0
  error = jnp.where(mask, jnp.abs(projected - jnp.where(mask, target, 0.0)), 0.0)
  return error, 2.0 * jnp.sum(visible > 0, axis=-1)


def keypoint_reprojection_l1(projected, target, visible):
  """HMR's KPR loss: (B, J, 2) projected and annotated keypoints (normalised), (B, J)
  visibility -> the mean absolute error over the batch's visible coordinates (a scalar)."""
  error, count = _visible_abs_errors(projected, target, visible)
  return jnp.sum(error) / jnp.maximum(jnp.sum(count), 1.0)


def keypoint_reprojection_l1_per_example(projected, target, visible):
  """KPR of each example: (B,) mean absolute error over its own visible coordinates."""
  error, count = _visible_abs_errors(projected, target, visible)
  return jnp.sum(error, axis=(1, 2)) / jnp.maximum(count, 1.0)


def squared_distance_transform(mask):
  """(H, W) silhouette -> (H, W) squared distance, in pixels^2, from each pixel centre
  to the nearest pixel centre with mask > 0.5 (0 inside; (H + W)^2 everywhere for an
  empty mask). Exact: Felzenszwalb and Huttenlocher's separable form, taking the 1D
  minima by brute force (H^2 W + W^2 H work), which suits crops up to a few hundred px."""
  height, width = mask.shape
  inside = mask > 0.5
  far = float((height + width)**2)
  rows = jnp.arange(height, dtype=jnp.float32)
  cols = jnp.arange(width, dtype=jnp.float32)
  # Along each column: the squared distance to the nearest inside pixel of that column.
  column = jnp.min(jnp.where(inside[None, :, :], (rows[:, None, None] - rows[None, :, None])**2,
                             far), axis=1)
  # Along each row: min over x' of column[y, x'] + (x - x')^2.
  return jnp.minimum(jnp.min(column[:, None, :] + (cols[:, None] - cols[None, :])[None]**2,
                             axis=2), far)


def sample_distance(distance, points_px):
  """(H, W) Euclidean distance map (pixels) and (N, 2) points (crop pixels) -> (N,)
  the distance at each point, bilinear between pixel centres. A point outside the
  crop gets the distance at the nearest border point plus its distance to it."""
  height, width = distance.shape
  x = points_px[:, 0] - 0.5
  y = points_px[:, 1] - 0.5
  xc = jnp.clip(x, 0.0, width - 1.0)
  yc = jnp.clip(y, 0.0, height - 1.0)
  outside = jnp.sqrt((x - xc)**2 + (y - yc)**2 + 1e-12) - 1e-6
  x0 = jnp.clip(jnp.floor(xc), 0, width - 2).astype(jnp.int32)
  y0 = jnp.clip(jnp.floor(yc), 0, height - 2).astype(jnp.int32)
  fx, fy = xc - x0, yc - y0
  d00, d01 = distance[y0, x0], distance[y0, x0 + 1]
  d10, d11 = distance[y0 + 1, x0], distance[y0 + 1, x0 + 1]
  inner = ((1 - fy) * ((1 - fx) * d00 + fx * d01) + fy * ((1 - fx) * d10 + fx * d11))
  return inner + jnp.maximum(outside, 0.0)


def sample_silhouette_points(mask, key, num: int):
  """(H, W) silhouette -> (num, 2) pixel centres drawn uniformly, with replacement,
  from its pixels (crop pixels, x then y), and () whether the mask had any pixel."""
  height, width = mask.shape
  flat = mask.reshape(-1) > 0.5
  logits = jnp.where(flat, 0.0, -jnp.inf)
  any_pixel = jnp.any(flat)
  index = jax.random.categorical(key, jnp.where(any_pixel, logits, 0.0), shape=(num,))
  points = jnp.stack([index % width, index // width], axis=-1).astype(jnp.float32) + 0.5
  return points, any_pixel


def mesh_reprojection(vertices_px, subset_px, distance_px, silhouette_points_px, size: int):
  """The MR chamfer loss of one example, normalised units squared (a scalar).

  vertices_px: (V, 2) projected vertices, crop pixels (the forward term's points);
  subset_px: (V', 2) a fixed subset of them (the reverse term's nearest-vertex search);
  distance_px: (S, S) Euclidean distance transform of the ground-truth silhouette;
  silhouette_points_px: (K, 2) points drawn from the ground-truth silhouette.
  """
  forward = jnp.mean(sample_distance(distance_px, vertices_px)**2)
  gap = silhouette_points_px[:, None, :] - subset_px[None, :, :]
  reverse = jnp.mean(jnp.min(jnp.sum(gap**2, axis=-1), axis=1))
  return (forward + reverse) * (2.0 / size)**2


def gradient_penalty(critic_fn, real, fake, key):
  """Gulrajani et al.'s penalty E[(|grad critic(x_hat)| - 1)^2], x_hat uniform on the
  segment between paired real and fake samples.

  critic_fn: a pytree of (B, ...) inputs -> (B,) scores; real, fake: pytrees alike.
  The norm is per sample, over every leaf of the input together."""
  batch = jax.tree.leaves(real)[0].shape[0]
  eps = jax.random.uniform(key, (batch,))
  mixed = jax.tree.map(
      lambda r, f: f + eps.reshape((batch,) + (1,) * (r.ndim - 1)) * (r - f), real, fake)
  grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(mixed)
  squared = sum(jnp.sum(g.reshape(batch, -1)**2, axis=-1) for g in jax.tree.leaves(grads))
  return jnp.mean((jnp.sqrt(squared + 1e-12) - 1.0)**2)
