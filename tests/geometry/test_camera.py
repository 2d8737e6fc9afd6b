"""Cameras: projection against the real Stacked Hourglass detections, and round trips."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.formats import h36m_files
from jpose.geometry import camera as camera_lib


def _camera(params):
  return camera_lib.Camera(*(jnp.asarray(getattr(params, n), jnp.float32)
                             for n in ("R", "T", "f", "c", "k", "p")))


@pytest.mark.parametrize("camera_id", h36m_files.CAMERA_IDS)
def test_s9_walking_projects_onto_the_detections(h36m_dir, camera_id):
  cameras = h36m_files.read_cameras(f"{h36m_dir}/cameras.h5")
  world = h36m_files.read_positions_3d(h36m_files.positions_path(h36m_dir, 9, "Walking"))
  detections = h36m_files.read_detections(
      h36m_files.detections_path(h36m_dir, 9, "Walking", camera_id))
  pixels = np.asarray(camera_lib.project_world_to_image(jnp.asarray(world),
                                                        _camera(cameras[(9, camera_id)])))
  chex.assert_shape(pixels, (world.shape[0], 17, 2))
  distance = np.linalg.norm(pixels - detections, axis=-1)
  median = np.nanmedian(distance)
  # The shared README measured 8.5-10.7 px; an untransposed R lands hundreds of px off.
  assert median < 15.0, f"camera {camera_id}: median {median:.1f} px"
  assert median > 2.0  # detections are not the projections themselves.


def test_untransposed_rotation_is_far_off(h36m_dir):
  cameras = h36m_files.read_cameras(f"{h36m_dir}/cameras.h5")
  world = h36m_files.read_positions_3d(h36m_files.positions_path(h36m_dir, 9, "Walking"))
  cam = _camera(cameras[(9, "54138969")])
  detections = h36m_files.read_detections(
      h36m_files.detections_path(h36m_dir, 9, "Walking", "54138969"))
  wrong = cam._replace(R=cam.R.T)
  pixels = np.asarray(camera_lib.project_world_to_image(jnp.asarray(world), wrong))
  assert np.nanmedian(np.linalg.norm(pixels - detections, axis=-1)) > 100.0


def test_world_camera_round_trip():
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
  cam = camera_lib.Camera(jnp.asarray(q), jnp.asarray([100.0, -2000.0, 1500.0]),
                          jnp.asarray([1145.0, 1145.0]), jnp.asarray([512.0, 515.0]),
                          jnp.zeros(3), jnp.zeros(2))
  points = jnp.asarray(rng.normal(size=(5, 17, 3)) * 1000)
  back = camera_lib.camera_to_world(camera_lib.world_to_camera(points, cam), cam)
  chex.assert_trees_all_close(back, points, atol=1e-3)


def test_pinhole_projection_by_hand():
  cam = camera_lib.Camera(jnp.eye(3), jnp.zeros(3), jnp.asarray([1000.0, 1000.0]),
                          jnp.asarray([500.0, 500.0]), jnp.zeros(3), jnp.zeros(2))
  # A point 2 m ahead, 0.2 m right and 0.1 m down lands 100 px right and 50 px down.
  pixel = camera_lib.project_to_image(jnp.asarray([200.0, 100.0, 2000.0]), cam)
  chex.assert_trees_all_close(pixel, jnp.asarray([600.0, 550.0]))
  # Radial distortion k1 scales the normalised radius by (1 + k1 r^2).
  distorted = camera_lib.project_to_image(
      jnp.asarray([200.0, 100.0, 2000.0]), cam._replace(k=jnp.asarray([0.1, 0.0, 0.0])))
  factor = 1 + 0.1 * (0.1**2 + 0.05**2)
  chex.assert_trees_all_close(distorted, jnp.asarray([500 + 100 * factor, 500 + 50 * factor]),
                              rtol=1e-6)
