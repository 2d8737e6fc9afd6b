"""The per-sequence record schema shared by every Human3.6M-style tfds builder.

One record is one (subject, action, camera) sequence. Builders fill it with
`sequence_record`, so the camera-frame pose and the 2D projection are computed in one
place for real and synthetic data alike.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
import jax.numpy as jnp

from jpose.geometry import camera as camera_lib

NUM_JOINTS = 17


def features() -> tfds.features.FeaturesDict:
  pose = lambda d: tfds.features.Tensor(shape=(None, NUM_JOINTS, d), dtype=np.float32)
  vector = lambda *s: tfds.features.Tensor(shape=s, dtype=np.float32)
  return tfds.features.FeaturesDict({
      "subject": tfds.features.Text(),  # 'S9'
      "action": tfds.features.Text(),  # Human3.6M name, e.g. 'Walking 1'
      "camera": tfds.features.Text(),  # camera id, e.g. '54138969'
      "fps": np.float32,
      "camera_R": vector(3, 3),  # world-to-camera rotation
      "camera_T": vector(3),  # camera centre, world mm
      "camera_f": vector(2),
      "camera_c": vector(2),
      "camera_k": vector(3),
      "camera_p": vector(2),
      "pose_3d": pose(3),  # camera frame, mm
      "pose_3d_world": pose(3),  # world frame, mm
      "pose_2d_gt": pose(2),  # pixels, projected with distortion
      "pose_2d_sh": pose(2),  # detections (or their stand-in), NaN where absent
  })


def camera_from_record(record) -> camera_lib.Camera:
  return camera_lib.Camera(*(jnp.asarray(record[f"camera_{n}"], jnp.float32)
                             for n in ("R", "T", "f", "c", "k", "p")))


def sequence_record(*, subject: str, action: str, camera_id: str, fps: float,
                    camera: dict[str, np.ndarray], pose_3d_world: np.ndarray,
                    pose_2d_sh: np.ndarray) -> dict:
  """Builds one record from world-frame joints (T, 17, 3) and one camera's parameters.

  `camera` maps R (world-to-camera), T, f, c, k, p to arrays.
  """
  cam = camera_lib.Camera(*(jnp.asarray(camera[n], jnp.float32)
                            for n in ("R", "T", "f", "c", "k", "p")))
  world = jnp.asarray(pose_3d_world, jnp.float32)
  pose_cam = camera_lib.world_to_camera(world, cam)
  record = {f"camera_{n}": np.asarray(camera[n], np.float32) for n in ("R", "T", "f", "c", "k", "p")}
  record.update(
      subject=subject, action=action, camera=camera_id, fps=np.float32(fps),
      pose_3d=np.asarray(pose_cam, np.float32),
      pose_3d_world=np.asarray(world, np.float32),
      pose_2d_gt=np.asarray(camera_lib.project_to_image(pose_cam, cam), np.float32),
      pose_2d_sh=np.asarray(pose_2d_sh, np.float32),
  )
  return record
