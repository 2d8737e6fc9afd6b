"""Linear blend skinning of one `BodyModel` example (Loper et al. 2015, eqs. 1-4).

`skin(model, pose, betas)` poses ONE body; `skin_batch` is its vmap over examples.
Pure jnp: jit, grad and vmap apply. Arithmetic runs in at least float32 (bf16 model
arrays or inputs are promoted), so sums over thousands of vertices never accumulate in
bf16. Rodrigues' formula uses a Taylor branch near zero angle, so gradients are finite
and correct at the rest pose.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jpose.body.model import BodyModel

# Below this squared angle the Taylor series of sin(t)/t and (1 - cos t)/t^2 is exact to
# float32 precision (the first dropped term is t^6 / 5040 < 2e-16).
_SMALL_ANGLE_SQ = 1e-4


def rodrigues(axis_angle):
  """(..., 3) axis-angle vectors -> (..., 3, 3) rotation matrices.

  R = I + a K + b K^2 with K = skew(r), a = sin(t)/t, b = (1 - cos t)/t^2, t = |r|.
  The exact branch sees a dummy angle where t is small, so neither branch produces NaN
  gradients (the "double where" pattern); b is written as 2 sin^2(t/2)/t^2, which does
  not cancel catastrophically like 1 - cos t does in float32.
  """
  r = axis_angle
  theta_sq = jnp.sum(r**2, axis=-1)
  small = theta_sq < _SMALL_ANGLE_SQ
  theta = jnp.sqrt(jnp.where(small, 1.0, theta_sq))
  half_sin = jnp.sin(0.5 * theta)
  a = jnp.where(small, 1.0 - theta_sq / 6.0 + theta_sq**2 / 120.0, jnp.sin(theta) / theta)
  b = jnp.where(small, 0.5 - theta_sq / 24.0 + theta_sq**2 / 720.0,
                2.0 * half_sin**2 / jnp.where(small, 1.0, theta_sq))
  zero = jnp.zeros_like(r[..., 0])
  k = jnp.stack([
      jnp.stack([zero, -r[..., 2], r[..., 1]], axis=-1),
      jnp.stack([r[..., 2], zero, -r[..., 0]], axis=-1),
      jnp.stack([-r[..., 1], r[..., 0], zero], axis=-1),
  ], axis=-2)
  eye = jnp.eye(3, dtype=r.dtype)
  return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


@functools.lru_cache(maxsize=16)
def _tree_levels(parents: tuple[int, ...]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
  """Joints grouped by depth, as (joint ids, parent ids) per level below the root.

  Composing one level at a time is a handful of batched matmuls instead of K chained
  ones, which keeps the compiled graph small for models with ~160 bones (ANNY).
  """
  depth = [0] * len(parents)
  for k, p in enumerate(parents):
    if k:
      depth[k] = depth[p] + 1
  levels = []
  for d in range(1, max(depth) + 1 if len(parents) > 1 else 1):
    ids = np.array([k for k in range(len(parents)) if depth[k] == d], np.int32)
    levels.append((ids, np.array([parents[k] for k in ids], np.int32)))
  return tuple(levels)


def _compute_dtype(*arrays):
  return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)


def skin(model: BodyModel, pose, betas):
  """Poses one body.

  Args:
    model: the body model.
    pose: (K, 3) or (K * 3,) axis-angle per joint; joint 0 is the global orientation.
    betas: (B',) shape coefficients, B' <= B (missing trailing ones are zero).

  Returns:
    vertices (V, 3) and posed joints (K, 3), metres, in the model's frame (no
    translation: the root joint stays at its rest position, rotated about itself).
  """
  num_k = model.num_joints
  dtype = _compute_dtype(pose, betas, model.v_template)
  pose = jnp.asarray(pose, dtype)
  if pose.size != 3 * num_k:
    raise ValueError(f"skin: pose has {pose.size} values, expected {num_k} joints x 3 for "
                     f"model '{model.name}'")
  pose = pose.reshape(num_k, 3)
  betas = jnp.asarray(betas, dtype)
  if betas.ndim != 1 or betas.shape[0] > model.num_betas:
    raise ValueError(f"skin: betas has shape {betas.shape}, expected (B,) with "
                     f"B <= {model.num_betas} for model '{model.name}'")
  shapedirs = model.shapedirs[..., :betas.shape[0]]

  # Eq. 2-3: shape blend shapes, then rest joints regressed from the shaped mesh.
  v_shaped = model.v_template.astype(dtype) + jnp.einsum(
      "vcb,b->vc", shapedirs, betas, preferred_element_type=dtype)
  rest_joints = jnp.einsum("kv,vc->kc", model.j_regressor, v_shaped,
                           preferred_element_type=dtype)
  posedirs, weights = model.posedirs, model.weights

  # Eq. 1 (pose correctives): the feature is (R_k - I) for every joint below the root.
  rotations = rodrigues(pose)
  v_posed = v_shaped
  if posedirs.shape[-1]:
    feature = (rotations[1:] - jnp.eye(3, dtype=dtype)).reshape(-1)
    v_posed = v_posed + jnp.einsum("vcp,p->vc", posedirs, feature,
                                   preferred_element_type=dtype)

  # Eq. 4: world transforms along the tree, G_k = G_parent(k) [R_k | J_k - J_parent(k)].
  parents = np.asarray(model.parents)
  offsets = rest_joints.at[1:].add(-rest_joints[parents[1:]])
  world_r = rotations
  world_t = offsets
  for ids, pids in _tree_levels(model.parents):
    world_r = world_r.at[ids].set(world_r[pids] @ rotations[ids])
    world_t = world_t.at[ids].set(
        jnp.einsum("kij,kj->ki", world_r[pids], offsets[ids]) + world_t[pids])

  # Skinning transforms move rest-pose points: x -> G_R (x - J_rest) + G_t.
  skin_t = world_t - jnp.einsum("kij,kj->ki", world_r, rest_joints)
  transforms = jnp.concatenate([world_r, skin_t[..., None]], axis=-1).reshape(num_k, 12)
  blended = jnp.einsum("vk,kd->vd", weights, transforms,
                       preferred_element_type=dtype).reshape(-1, 3, 4)
  vertices = jnp.einsum("vij,vj->vi", blended[..., :3], v_posed) + blended[..., 3]
  return vertices, world_t


def axis_angle_from_matrix(rotation):
  """(..., 3, 3) rotation matrices -> (..., 3) axis-angle vectors, angles in [0, pi].

  Goes through the quaternion (Shepperd's method: build it from the largest of the four
  diagonal combinations), which stays accurate near 0 and pi where acos of the trace or
  the skew part alone lose the axis.
  """
  r = rotation
  r00, r11, r22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
  candidates = jnp.stack([
      jnp.stack([1 + r00 + r11 + r22, r[..., 2, 1] - r[..., 1, 2],
                 r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], axis=-1),
      jnp.stack([r[..., 2, 1] - r[..., 1, 2], 1 + r00 - r11 - r22,
                 r[..., 0, 1] + r[..., 1, 0], r[..., 0, 2] + r[..., 2, 0]], axis=-1),
      jnp.stack([r[..., 0, 2] - r[..., 2, 0], r[..., 0, 1] + r[..., 1, 0],
                 1 - r00 + r11 - r22, r[..., 1, 2] + r[..., 2, 1]], axis=-1),
      jnp.stack([r[..., 1, 0] - r[..., 0, 1], r[..., 0, 2] + r[..., 2, 0],
                 r[..., 1, 2] + r[..., 2, 1], 1 - r00 - r11 + r22], axis=-1),
  ], axis=-2)  # (..., 4 candidates, wxyz), candidate i has 4 q_i^2 at position i.
  best = jnp.argmax(jnp.stack([1 + r00 + r11 + r22, 1 + r00 - r11 - r22,
                               1 - r00 + r11 - r22, 1 - r00 - r11 + r22], axis=-1), axis=-1)
  q = jnp.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
  q = q / jnp.linalg.norm(q, axis=-1, keepdims=True)
  q = jnp.where(q[..., :1] < 0, -q, q)
  sin_half = jnp.linalg.norm(q[..., 1:], axis=-1)
  angle = 2.0 * jnp.arctan2(sin_half, q[..., 0])
  # angle / sin(angle / 2) -> 2 as the angle -> 0.
  scale = jnp.where(sin_half < 1e-7, 2.0, angle / jnp.where(sin_half < 1e-7, 1.0, sin_half))
  return q[..., 1:] * scale[..., None]


def rotation_from_6d(x):
  """(..., 6) -> (..., 3, 3): Zhou et al.'s continuous 6D rotation representation, as
  SPIN stores `smpl_mean_params.npz` (the 6 numbers are the (3, 2) matrix of the first
  two columns, row-major); Gram-Schmidt on the two columns, the third their cross."""
  m = x.reshape(x.shape[:-1] + (3, 2))
  a1, a2 = m[..., 0], m[..., 1]
  b1 = a1 / jnp.linalg.norm(a1, axis=-1, keepdims=True)
  b2 = a2 - jnp.sum(b1 * a2, axis=-1, keepdims=True) * b1
  b2 = b2 / jnp.linalg.norm(b2, axis=-1, keepdims=True)
  return jnp.stack([b1, b2, jnp.cross(b1, b2)], axis=-1)


# vmap of `skin` over a leading batch axis of pose and betas: (N, K, 3), (N, B).
skin_batch = jax.vmap(skin, in_axes=(None, 0, 0))


def regress(model: BodyModel, vertices, which: str = "h36m"):
  """(..., V, 3) vertices -> (..., J, 3) joints.

  which: "h36m" (17, `skeleton.H36M_17` order), "lsp" (14, `skeleton.LSP_14` order) or
  "kinematic" (the K joints of `model.j_regressor`; on posed vertices this is only an
  approximation of the posed joints that `skin` returns).
  """
  regressors = {"h36m": model.h36m_regressor, "lsp": model.lsp_regressor,
                "kinematic": model.j_regressor}
  if which not in regressors:
    raise ValueError(f"regress: which='{which}' is not one of {sorted(regressors)}")
  dtype = _compute_dtype(vertices)
  return jnp.einsum("jv,...vc->...jc", regressors[which], vertices,
                    preferred_element_type=dtype)
