"""The one path from a 2D detector's keypoints to 3D with a trained lifter, TCN or VAE:
`lift_function` maps COCO-17 (x, y, score) to Human3.6M-17 joints in mm. `jpose.infer`
runs it on keypoint files and videos, and `jpose.export` serialises it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jpose.data import lifter_inputs
from jpose.data import resident
from jpose.geometry import skeleton
from jpose.geometry import weak_perspective as wp

LIFTING_TRAINERS = ("supervised", "gan", "temporal", "vae")
# The unsupervised VAE's poses have no absolute size (it never saw 3D), so jpose.infer
# gives them a Human3.6M body's: the unit of `jpose.geometry.weak_perspective` (the RMS
# image-plane distance of the 16 non-root joints from the root, at the root's depth)
# averages 452.5 mm over Human3.6M's 1,464,400 training poses (std 59.5 mm), measured as
# tests/test_infer.py::test_vae_scale_is_human36m_mean recomputes it.
VAE_RMS_RADIUS_MM = 452.5


def check_liftable(config: ml_collections.ConfigDict) -> None:
  if config.train.trainer not in LIFTING_TRAINERS:
    raise ValueError(f"config.train.trainer='{config.train.trainer}': jpose.infer lifts 2D "
                     f"keypoints, which only {list(LIFTING_TRAINERS)} models read")
  if config.model.input_depth:
    raise ValueError("config.model.input_depth=True: this TCN reads per-joint depth from an "
                     "image model as well as 2D; lifting keypoints alone needs a 2D model")


def to_model_joints(points: jax.Array, keypoints: str) -> jax.Array:
  """(..., 17, 2) COCO-17 pixels (NaN: absent) -> (..., 17, 2) Human3.6M-17 order.

  A "coco" model reads the 13 joints COCO shares with Human3.6M. An "h36m" model also
  reads the four COCO lacks, which are derived (`skeleton.h36m_from_coco`): an
  approximation the "coco" configs avoid.
  """
  if keypoints == "coco":
    return skeleton.convert_joints(points, skeleton.COCO_17_TO_H36M_17)
  return skeleton.h36m_from_coco(points)


def align_to_training(pose_2d: jax.Array, mean_2d: jax.Array, keypoints: str,
                      sequence: bool) -> jax.Array:
  """Moves and scales "image"-frame inputs onto the training images' typical person.

  An "image"-frame model learnt Human3.6M's pixels: people of a certain size near the
  middle of a 1000-pixel frame. Another camera puts them anywhere at any size, so the
  joints present are moved and scaled onto the same joints of the training split's mean
  pose (centroid onto centroid, RMS spread onto RMS spread), which a missed joint does not
  upset: per frame for (B, 17, 2) inputs, and with one transform per sequence for
  (B, T, 17, 2) ones (`sequence`), so motion is kept.
  """
  kept = lifter_inputs.select(pose_2d, keypoints)
  present = ~jnp.isnan(kept[..., :1])
  count = jnp.maximum(jnp.sum(present, axis=-2), 1)  # (..., 1)
  reference = jnp.where(present, mean_2d, 0.0)
  centre = jnp.sum(jnp.where(present, kept, 0.0), axis=-2) / count
  ref_centre = jnp.sum(reference, axis=-2) / count
  spread = jnp.sum(jnp.where(present, (kept - centre[..., None, :])**2, 0.0), axis=(-2, -1))
  ref_spread = jnp.sum(jnp.where(present, (mean_2d - ref_centre[..., None, :])**2, 0.0),
                       axis=(-2, -1))
  if sequence:  # one transform per sequence: means over time.
    centre, ref_centre = (jnp.mean(c, axis=1, keepdims=True) for c in (centre, ref_centre))
    spread, ref_spread = (jnp.mean(s, axis=1, keepdims=True) for s in (spread, ref_spread))
  scale = jnp.sqrt(ref_spread / jnp.maximum(spread, 1e-12))
  return (pose_2d - centre[..., None, :]) * scale[..., None, None] + ref_centre[..., None, :]


def lift_function(config: ml_collections.ConfigDict, trainer, score_threshold: float):
  """The pure function state, keypoints -> 3D of a trained model.

  keypoints: (B, 17, 3) for frame-wise lifters, (B, T, 17, 3) for the TCN: COCO-17
  (x, y, score) in the video's pixels. Joints scoring under `score_threshold` (or NaN)
  are absent. Returns (B[, T], 17, 3) Human3.6M-17 joints in mm, camera frame (x right, y
  down, z away from the camera), relative to the pelvis.
  """
  check_liftable(config)
  data = config.data
  temporal = config.train.trainer == "temporal"

  def lift(state, keypoints):
    keypoints = jnp.asarray(keypoints, jnp.float32)
    seen = keypoints[..., 2:] >= score_threshold  # NaN scores compare False: absent.
    pose_2d = to_model_joints(jnp.where(seen, keypoints[..., :2], jnp.nan), data.keypoints)
    if data.frame_2d == "image" and config.train.trainer != "vae":
      pose_2d = align_to_training(pose_2d, state.norm.mean_2d, data.keypoints, temporal)
    batch = pose_2d.shape[0]
    # Flip tests mirror about a vertical line: the training images' centre for "image"
    # inputs; anything for "pose" and VAE inputs, which do not see position.
    principal_x = jnp.full((batch,), (state.norm.mean_2d[1, 0] + state.norm.mean_2d[4, 0]) / 2)
    if temporal:
      field, causal = trainer.field, config.model.causal
      before = field - 1 if causal else field // 2
      padded = jnp.pad(pose_2d, [(0, 0), (before, field - 1 - before), (0, 0), (0, 0)],
                       mode="edge")
      predicted = trainer.predict_sequences(state, padded, jnp.zeros(padded.shape[:-1] + (3,)),
                                            principal_x)
    else:
      inputs = {"pose_2d": pose_2d, "pose_3d": jnp.zeros(pose_2d.shape[:-1] + (3,)),
                "camera_c": jnp.stack([principal_x, jnp.zeros_like(principal_x)], axis=-1)}
      if config.train.trainer == "vae":  # see VAE_RMS_RADIUS_MM.
        _, scale = wp.normalise_2d(jnp.nan_to_num(pose_2d), jnp.ones((batch, 2)),
                                   jnp.zeros((batch, 2)))
        inputs.update(camera_f=jnp.ones((batch, 2)), root_depth=VAE_RMS_RADIUS_MM / scale,
                      camera_c=jnp.zeros((batch, 2)))
      predict = (resident.flip_averaged(trainer.predict) if config.eval.flip_test
                 else trainer.predict)
      predicted = predict(state, inputs)
    return predicted - predicted[..., :1, :]  # the TCN's root may sit off the origin.
  return lift


def lift_track(config, trainer, state, points: np.ndarray, scores: np.ndarray,
               batch_size: int = 1024) -> np.ndarray:
  """(T, 17, 2) COCO-17 pixels and (T, 17) scores -> (T, 17, 3) mm, compiled once: a TCN
  lifts the whole track as one sequence, a lifter in fixed-size batches."""
  keypoints = np.concatenate([points, scores[..., None]], axis=-1).astype(np.float32)
  lift = jax.jit(lift_function(config, trainer, score_threshold=0.5))  # scores are 0 or 1.
  if config.train.trainer == "temporal":
    return np.asarray(lift(state, keypoints[None]))[0]
  out = []
  for start in tqdm.trange(0, len(keypoints), batch_size, desc="lift", leave=False):
    chunk = keypoints[start:start + batch_size]
    padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - len(chunk), axis=0)])
    out.append(np.asarray(lift(state, padded))[:len(chunk)])
  return np.concatenate(out)
