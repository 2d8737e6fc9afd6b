"""Rendered images of device-resident poses: the mannequin drawn at each frame's 3D pose.

`render_batch` turns (B,) frame ids of a `resident.ResidentData` into an image batch in
the image conventions' layout, on the device, inside a jitted step. Each sequence gets
one look (appearance key = fold_in(key, sequence start)), so a video is coherent and a
fixed key renders the same images every time (evaluation); fold a step into the key
for fresh looks while training.

Lens distortion: resident `pose_2d` is projected WITH Human3.6M's distortion, which the
resident data does not keep. The root's x, y are recovered from its pixel with the plain
pinhole (X = (u - c_x) Z / f_x); the body is then rendered, and `joints_2d` projected,
through that same undistorted pinhole and crop, so image and joints agree exactly. The
recovered root is off by the distortion at the root's pixel (see tests/data/test_rendered.py
for the size on real Human3.6M), and `joints_2d` differs from `crop @ pose_2d` by the
distortion too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jpose.data import resident
from jpose.geometry import skeleton
from jpose.render import appearance as appearance_lib
from jpose.render import mannequin


def absolute_joints(pose_3d, root_pixel, root_depth, focal, principal):
  """Root-relative (..., 17, 3) mm + the root's pixel (..., 2), depth (...) and intrinsics
  (..., 2) -> (..., 17, 3) camera-frame joints, by the undistorted pinhole."""
  root_xy = (root_pixel - principal) * root_depth[..., None] / focal
  root = jnp.concatenate([root_xy, root_depth[..., None]], axis=-1)
  return pose_3d + root[..., None, :]


def looks(look_ids, key) -> appearance_lib.Appearance:
  """(B,) look ids -> their appearances (leading axis B), one per id and key."""
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(look_ids)
  return jax.vmap(appearance_lib.sample_appearance)(keys)


def appearances(data: resident.ResidentData, frame_ids, key) -> appearance_lib.Appearance:
  """(B,) frame ids -> their looks (leading axis B): one per sequence, from the key."""
  return looks(data.first[frame_ids], key)


def render_frames(frames: dict[str, jnp.ndarray], look_ids, key, size: int,
                  margin: float = 1.3) -> dict[str, jnp.ndarray]:
  """Renders (B,) frames given as arrays: pose_2d (B, 17, 2) pixels, pose_3d (B, 17, 3)
  root-relative mm, root_depth (B,), camera_f and camera_c (B, 2); `look_ids` (B,) picks
  each frame's look (frames with the same id and key look alike). Returns the
  `render_batch` dict. The host evaluation feeds its batches through this."""
  joints = absolute_joints(frames["pose_3d"], frames["pose_2d"][:, skeleton.ROOT],
                           frames["root_depth"], frames["camera_f"], frames["camera_c"])
  out = jax.vmap(functools.partial(mannequin.render_crop, size=size, margin=margin))(
      joints, frames["camera_f"], frames["camera_c"], appearance=looks(look_ids, key))
  inside = jnp.all((out["joints_2d"] >= 0) & (out["joints_2d"] <= size), axis=-1)
  return {"image": out["image"], "joints_2d": out["joints_2d"],
          "visible": inside.astype(jnp.float32), "pose_3d": frames["pose_3d"],
          "has_3d": jnp.ones(look_ids.shape, jnp.float32),
          "root_depth": frames["root_depth"], "crop": out["crop"],
          "camera_f": frames["camera_f"], "camera_c": frames["camera_c"],
          "silhouette": out["silhouette"], "parts": out["parts"]}


@functools.partial(jax.jit, static_argnames=("size", "margin"))
def render_batch(data: resident.ResidentData, frame_ids, key, size: int, flip=None,
                 margin: float = 1.3) -> dict[str, jnp.ndarray]:
  """Renders (B,) frames of `data` as an image batch.

  Args:
    data: the device-resident split.
    frame_ids: (B,) int32 flat frame indices.
    key: PRNG key; with the same key a frame always renders the same image.
    size: crop side S in pixels (static).
    flip: optional (B,) bool; mirrored frames (as `resident.gather_frames` flips them)
      are rendered mirrored.
    margin: crop side over the larger side of the joints' 2D bounding box.
  Returns:
    image (B, S, S, 3) float32 [0, 1], joints_2d (B, 17, 2) crop pixels, visible (B, 17)
    (0 for joints outside the crop), pose_3d (B, 17, 3) root-relative mm, has_3d (B,),
    root_depth (B,), crop (B, 2, 3), camera_f, camera_c (B, 2), silhouette (B, S, S),
    parts (B, S, S) int32.
  """
  if flip is None:
    flip = jnp.zeros(frame_ids.shape, bool)
  frames = resident.gather_frames(data, frame_ids, flip)
  return render_frames(frames, data.first[frame_ids], key, size, margin)
