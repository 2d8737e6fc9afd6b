"""SMPLify-style fitting of any `BodyModel`'s pose and shape to Human3.6M-17 joints.

`fit_3d` fits 3D joints (mm, root-relative or absolute; body models are in metres, so
targets are divided by 1000 and results come back in mm); `fit_2d` fits pixel keypoints
seen by a pinhole camera. Both run optax Adam for `FitConfig.steps` steps inside one
jitted `lax.scan`; the per-frame loss is written for one frame and vmapped. The first
`orient_fraction` of the steps move only the global orientation (and translation), from an
initialisation that aligns the rest body's torso to the target (Procrustes in 3D;
upright, facing the camera at the depth its torso size implies in 2D), as SMPLify does.

The fitter skins `reduce_to_regressors(model)`: only the vertices the regressors read,
plus the rest joints as extra vertices (exact, since joints are linear in the shaped
mesh), which makes a step hundreds of vertices instead of the whole mesh.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jpose.body import lbs
from jpose.body import priors
from jpose.body import smpl
from jpose.body.model import BodyModel
from jpose.geometry import procrustes
from jpose.geometry import skeleton

# H36M-17 joints that move rigidly with the pelvis and chest (hips, spine, thorax,
# shoulders): the orientation initialisation aligns these.
TORSO = (0, 1, 4, 7, 8, 11, 14)
MM_PER_M = 1000.0


@dataclasses.dataclass(frozen=True)
class FitConfig:
  """Optimisation settings and loss weights (loss terms are per frame, summed)."""

  steps: int = 300  # Adam steps in all.
  orient_fraction: float = 0.2  # of which this first part moves only the global
  # orientation and translation (SMPLify's first stage).
  learning_rate: float = 0.05  # rad for angles, metres for translation, units for betas.
  joint_sigma_m: float = 0.02  # 3D: a joint this far off costs 1.
  pixel_sigma: float = 10.0  # 2D: a keypoint this many pixels off costs 1.
  pose_l2: float = 1e-3  # per rad^2 of every non-root joint angle.
  bend_limit: float = 10.0  # per rad^2 of a hinge bending backwards.
  gaussian: float = 1e-3  # times the Gaussian pose prior's 0.5 Mahalanobis^2.
  shape_l2: float = 1e-2  # per unit^2 of betas, per frame.
  smoothness: float = 0.0  # per rad^2 of pose change between consecutive frames.
  fit_betas: bool = True  # False keeps betas at their initial value.
  share_betas: bool = True  # one betas for all frames (one person), else per frame.


class FitResult(NamedTuple):
  pose: np.ndarray  # (N, K, 3) axis-angle.
  betas: np.ndarray  # (N, B)
  translation: np.ndarray  # (N, 3) metres (3D: target frame; 2D: camera frame).
  joints: np.ndarray  # (N, 17, 3) fitted H36M joints, mm, in the target's frame.
  error: np.ndarray  # (N, 17) per joint: 3D distance in mm, or 2D reprojection in px.
  loss: np.ndarray  # (steps,) total loss along the optimisation.


def reduce_to_regressors(model: BodyModel) -> BodyModel:
  """The same body restricted to what the H36M and LSP regressors read.

  Vertices outside the regressors' support are dropped; the K rest joints become K
  extra vertices (v_template and shapedirs pushed through `j_regressor`, no pose
  correctives, rigidly bound to the root) that the new `j_regressor` selects. Joints
  are linear in the shaped mesh, so `skin` and `regress` give the same H36M/LSP joints
  and the same posed joints as on the full model.
  """
  ids = np.flatnonzero(np.any(np.asarray(model.h36m_regressor) != 0, axis=0) |
                       np.any(np.asarray(model.lsp_regressor) != 0, axis=0))
  num_k = model.num_joints
  j_reg = model.j_regressor
  joints_template = j_reg @ model.v_template
  joints_shapedirs = jnp.einsum("kv,vcb->kcb", j_reg, model.shapedirs)
  weights = jnp.zeros((num_k, num_k)).at[:, 0].set(1.0)

  def select(regressor):
    return jnp.concatenate([regressor[:, ids], jnp.zeros((regressor.shape[0], num_k))], 1)
  return BodyModel(
      v_template=jnp.concatenate([model.v_template[ids], joints_template]),
      shapedirs=jnp.concatenate([model.shapedirs[ids], joints_shapedirs]),
      posedirs=jnp.concatenate([model.posedirs[ids], jnp.zeros(
          (num_k,) + model.posedirs.shape[1:], model.posedirs.dtype)]),
      j_regressor=jnp.concatenate([jnp.zeros((num_k, ids.size)), jnp.eye(num_k)], 1),
      weights=jnp.concatenate([model.weights[ids], weights]),
      faces=jnp.zeros((0, 3), jnp.int32),
      h36m_regressor=select(model.h36m_regressor), lsp_regressor=select(model.lsp_regressor),
      parents=model.parents, name=model.name + "[regressors]")


def regressed_joints(model: BodyModel, pose, betas, which: str = "h36m"):
  """One body's (17, 3) H36M (or (14, 3) LSP) joints in metres, model frame."""
  return lbs.regress(model, lbs.skin(model, pose, betas)[0], which)


def default_bend_limits(model: BodyModel) -> tuple[priors.BendLimit, ...]:
  """SMPL's elbow/knee limits for a model with SMPL's tree; none otherwise."""
  return priors.SMPL_BEND_LIMITS if tuple(model.parents) == smpl.PARENTS else ()


def fit_3d(model: BodyModel, targets_mm, *, root_relative: bool = True,
           config: FitConfig = FitConfig(), gaussian: priors.GaussianPosePrior | None = None,
           init_betas=None, bend_limits=None, joint_weights=None) -> FitResult:
  """Fits pose and shape to (N, 17, 3) H36M-17 joints in mm (NaN joints are ignored).

  root_relative=True compares joints relative to the root (Hip) and keeps the
  translation at zero; otherwise the translation is fitted too. The returned joints
  and errors follow the same convention. `init_betas` (B,) starts (or, with
  config.fit_betas=False, fixes) the shape.
  """
  targets = np.asarray(targets_mm, np.float32) / MM_PER_M
  if targets.ndim != 3 or targets.shape[1:] != (skeleton.H36M_17.num_joints, 3):
    raise ValueError(f"fit_3d: targets have shape {targets.shape}, expected (N, 17, 3)")
  if not np.all(np.isfinite(targets[:, TORSO])):
    raise ValueError("fit_3d: the torso joints (hips, spine, thorax, shoulders) must be "
                     "finite in every frame")
  reduced = reduce_to_regressors(model)
  weights = _joint_weights(targets, joint_weights)
  limits = default_bend_limits(model) if bend_limits is None else tuple(bend_limits)
  params, losses = _run_3d(reduced, _initial_betas(model, targets.shape[0], init_betas, config),
                           jnp.asarray(np.nan_to_num(targets)), weights, gaussian,
                           config=config, limits=limits, root_relative=root_relative)
  joints = _joints_of(reduced, params)
  if root_relative:
    joints, targets = joints - joints[:, :1], targets - targets[:, :1]
  error = np.linalg.norm(joints - targets, axis=-1) * MM_PER_M
  return _result(params, joints * MM_PER_M, np.where(weights > 0, error, np.nan), losses)


def fit_subject(model: BodyModel, targets_mm: np.ndarray, *, steps: int, chunk: int,
                shape_frames: int, gaussian: priors.GaussianPosePrior | None = None,
                gaussian_weight: float = 1e-2, bend_weight: float = 100.0,
                shape_weight: float = 0.1) -> FitResult:
  """One person's (N, 17, 3) mm joints (`python -m jpose.fit`, the default pose library):
  one shape from a spread of `shape_frames` frames, then every frame's pose with that shape
  fixed, in chunks of `chunk` frames."""
  shape_config = FitConfig(steps=steps, gaussian=gaussian_weight, bend_limit=bend_weight,
                           shape_l2=shape_weight, share_betas=True)
  betas = np.zeros(model.num_betas, np.float32)
  if shape_frames:
    spread = np.linspace(0, len(targets_mm) - 1, min(shape_frames, len(targets_mm)))
    betas = fit_3d(model, targets_mm[spread.astype(int)], config=shape_config,
                   gaussian=gaussian).betas[0]
  pose_config = dataclasses.replace(shape_config, fit_betas=False)
  results = []
  for start in range(0, len(targets_mm), chunk):
    part = targets_mm[start:start + chunk]
    # Pad the last chunk to the chunk size so every chunk reuses one compiled program.
    padded = np.concatenate([part, np.repeat(part[-1:], chunk - len(part), 0)])
    result = fit_3d(model, padded, config=pose_config, gaussian=gaussian, init_betas=betas)
    results.append(_first_frames(result, len(part)))
  return FitResult(*[np.concatenate(parts) for parts in zip(*results)])


def _first_frames(result: FitResult, count: int) -> FitResult:
  """The first `count` frames of a result (the loss curve is kept whole)."""
  return result._replace(**{k: getattr(result, k)[:count] for k in
                            ("pose", "betas", "translation", "joints", "error")})


def fit_2d(model: BodyModel, keypoints_px, focal, centre, *,
           config: FitConfig = FitConfig(), gaussian: priors.GaussianPosePrior | None = None,
           init_betas=None, bend_limits=None, joint_weights=None) -> FitResult:
  """Fits pose, shape and camera-frame translation to (N, 17, 2) H36M-17 keypoints.

  focal, centre: (2,) or (N, 2) pinhole intrinsics in pixels (no distortion). The
  camera looks down +z with y down, as in `jpose.geometry.camera`. NaN keypoints are
  ignored. The returned joints are camera-frame mm; the error is in pixels.
  """
  keypoints = np.asarray(keypoints_px, np.float32)
  if keypoints.ndim != 3 or keypoints.shape[1:] != (skeleton.H36M_17.num_joints, 2):
    raise ValueError(f"fit_2d: keypoints have shape {keypoints.shape}, expected (N, 17, 2)")
  num_frames = keypoints.shape[0]
  focal = np.broadcast_to(np.asarray(focal, np.float32), (num_frames, 2))
  centre = np.broadcast_to(np.asarray(centre, np.float32), (num_frames, 2))
  reduced = reduce_to_regressors(model)
  weights = _joint_weights(keypoints, joint_weights)
  limits = default_bend_limits(model) if bend_limits is None else tuple(bend_limits)
  params, losses = _run_2d(reduced, _initial_betas(model, num_frames, init_betas, config),
                           jnp.asarray(np.nan_to_num(keypoints)), weights, jnp.asarray(focal),
                           jnp.asarray(centre), gaussian, config=config, limits=limits)
  joints = _joints_of(reduced, params)
  projected = joints[..., :2] / np.maximum(joints[..., 2:], 0.1) * focal[:, None] + \
      centre[:, None]
  error = np.linalg.norm(projected - keypoints, axis=-1)
  return _result(params, joints * MM_PER_M, np.where(weights > 0, error, np.nan), losses)


def _joint_weights(targets: np.ndarray, joint_weights) -> jnp.ndarray:
  """(N, 17) weights: the given per-joint weights (17,) or (N, 17), zero where NaN."""
  finite = np.all(np.isfinite(targets), axis=-1).astype(np.float32)
  if joint_weights is not None:
    finite = finite * np.broadcast_to(np.asarray(joint_weights, np.float32), finite.shape)
  return jnp.asarray(finite)


def _initial_betas(model: BodyModel, num_frames: int, init_betas, config: FitConfig):
  betas = (jnp.zeros(model.num_betas) if init_betas is None
           else jnp.asarray(init_betas, jnp.float32).reshape(model.num_betas))
  return betas if config.share_betas else jnp.broadcast_to(betas, (num_frames, betas.size))


def _frame_betas(betas, num_frames: int):
  return jnp.broadcast_to(betas, (num_frames, betas.shape[-1]))


@jax.jit
def _joints_jit(model, pose, betas, translation):
  joints = jax.vmap(regressed_joints, in_axes=(None, 0, 0))(model, pose, betas)
  return joints + translation[:, None]


def _joints_of(model, params) -> np.ndarray:
  pose = params["pose"]
  return np.asarray(_joints_jit(model, pose, _frame_betas(params["betas"], pose.shape[0]),
                                params["translation"]))


def _result(params, joints_mm, error, losses) -> FitResult:
  pose = np.asarray(params["pose"])
  return FitResult(pose=pose, betas=np.asarray(_frame_betas(params["betas"], pose.shape[0])),
                   translation=np.asarray(params["translation"]), joints=joints_mm,
                   error=error, loss=np.asarray(losses))


def _pose_prior(pose, config: FitConfig, limits, gaussian):
  value = config.pose_l2 * priors.pose_l2(pose)
  value += config.bend_limit * priors.bend_limit_penalty(pose, limits)
  if gaussian is not None:
    value += config.gaussian * gaussian(pose)
  return value


def _start_pose(model: BodyModel, gaussian):
  """(K, 3): the prior's mean pose when there is one (arms down, as people mostly are;
  from the T-pose, descent reaches many poses through twisted limbs), else the rest."""
  if gaussian is None:
    return jnp.zeros((model.num_joints, 3))
  return jnp.concatenate([jnp.zeros(3), gaussian.mean]).reshape(model.num_joints, 3)


@functools.partial(jax.jit, static_argnames=("config", "limits", "root_relative"))
def _run_3d(model, betas, targets, weights, gaussian, *, config, limits, root_relative):
  num_frames = targets.shape[0]
  torso = np.array(TORSO)
  # Rest body at the initial shape; rotate it about its root onto the target torso.
  start = _start_pose(model, gaussian)
  rest_betas = betas if betas.ndim == 1 else betas[0]
  rest_vertices, rest_joints = lbs.skin(model, start, rest_betas)
  rest = lbs.regress(model, rest_vertices, "h36m")[torso]
  root = rest_joints[0]
  _, _, rotation, _ = procrustes.similarity_transform(
      jnp.broadcast_to(rest, (num_frames,) + rest.shape), targets[:, torso])
  pose = start[None].repeat(num_frames, 0).at[:, 0].set(lbs.axis_angle_from_matrix(rotation))
  moved = jnp.einsum("nij,tj->nti", rotation, rest - root) + root
  translation = jnp.zeros((num_frames, 3)) if root_relative else (
      targets[:, torso].mean(1) - moved.mean(1))

  def frame_loss(pose, betas, translation, target, weight):
    joints = regressed_joints(model, pose, betas) + translation
    if root_relative:
      joints, target = joints - joints[0], target - target[0]
    data = jnp.sum(weight * jnp.sum((joints - target)**2, axis=-1)) / config.joint_sigma_m**2
    return data + _pose_prior(pose, config, limits, gaussian)

  params = {"pose": pose, "betas": betas, "translation": translation}
  return _adam(frame_loss, params, (targets, weights), config,
               fit_translation=not root_relative)


@functools.partial(jax.jit, static_argnames=("config", "limits"))
def _run_2d(model, betas, keypoints, weights, focal, centre, gaussian, *, config, limits):
  num_frames = keypoints.shape[0]
  torso = np.array(TORSO)
  # A half turn about x takes the model's y-up, +z-facing frame (SMPL's) to the
  # camera's y-down frame with the body facing -z, i.e. the camera.
  pose = _start_pose(model, gaussian)[None].repeat(num_frames, 0).at[:, 0, 0].set(np.pi)
  rest = regressed_joints(model, pose[0], betas if betas.ndim == 1 else betas[0])[torso]
  visible = weights[:, torso, None]
  count = jnp.maximum(visible.sum(1), 1.0)
  image_mean = jnp.sum(visible * keypoints[:, torso], 1) / count
  image_spread = jnp.sqrt(jnp.sum(visible * (keypoints[:, torso] - image_mean[:, None])**2,
                                  axis=(1, 2)) / count[:, 0])
  model_spread = jnp.sqrt(jnp.sum((rest[:, :2] - rest[:, :2].mean(0))**2) / len(TORSO))
  depth = focal.mean(-1) * model_spread / jnp.maximum(image_spread, 1.0)
  xy = (image_mean - centre) / focal * depth[:, None] - rest[:, :2].mean(0)
  translation = jnp.concatenate([xy, depth[:, None] - rest[:, 2].mean()], axis=-1)

  def frame_loss(pose, betas, translation, target, weight, f, c):
    joints = regressed_joints(model, pose, betas) + translation
    # A joint at or behind the camera would divide by ~0: clamp depth to 10 cm.
    projected = joints[:, :2] / jnp.maximum(joints[:, 2:], 0.1) * f + c
    residual = jnp.sum((projected - target)**2, axis=-1) / config.pixel_sigma**2
    return jnp.sum(weight * residual) + _pose_prior(pose, config, limits, gaussian)

  params = {"pose": pose, "betas": betas, "translation": translation}
  return _adam(frame_loss, params, (keypoints, weights, focal, centre), config,
               fit_translation=True)


def _adam(frame_loss, params, frame_inputs, config: FitConfig, fit_translation: bool):
  """Adam on the summed per-frame losses, one `lax.scan` over the steps.

  frame_loss(pose, betas, translation, *inputs) -> scalar for one frame; every input is
  vmapped over its leading (frame) axis, betas too unless shared.
  """
  shared = params["betas"].ndim == 1
  num_frames, num_k = params["pose"].shape[:2]
  per_frame = jax.vmap(frame_loss, in_axes=(0, None if shared else 0, 0) +
                       (0,) * len(frame_inputs))

  def total(p):
    loss = jnp.sum(per_frame(p["pose"], p["betas"], p["translation"], *frame_inputs))
    # Shared betas carry the shape prior once per frame, as per-frame betas do.
    loss += config.shape_l2 * priors.shape_l2(p["betas"]) * (num_frames if shared else 1)
    if config.smoothness and num_frames > 1:
      loss += config.smoothness * jnp.sum((p["pose"][1:] - p["pose"][:-1])**2)
    return loss

  optimizer = optax.adam(config.learning_rate)
  root_only = jnp.zeros((num_k, 3)).at[0].set(1.0)

  def step(carry, index):
    p, state = carry
    loss, grads = jax.value_and_grad(total)(p)
    first_stage = index < int(config.orient_fraction * config.steps)
    grads = {
        "pose": grads["pose"] * jnp.where(first_stage, root_only, 1.0),
        "betas": grads["betas"] * jnp.where(first_stage | (not config.fit_betas), 0.0, 1.0),
        "translation": grads["translation"] * float(fit_translation),
    }
    updates, state = optimizer.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), loss

  (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)),
                                     jnp.arange(config.steps))
  return params, losses
