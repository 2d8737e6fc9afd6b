"""jpose.infer and jpose.export: keypoint files in, 3D and an animation out, and the
exported model's predictions equal to the in-process ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose import export
from jpose import infer
from jpose.formats import h36m_files
from jpose.inference import lifting
from jpose.geometry import camera as camera_lib
from jpose.geometry import skeleton
from jpose.train import loop


def _train(tfds_dir, root, name: str, **overrides) -> str:
  config = configs.load(f"{name}:tiny")
  config.data.data_dir = tfds_dir
  for key, value in overrides.items():
    section, field = key.split(".")
    config[section][field] = value
  workdir = str(root / name)
  loop.train_and_evaluate(config, workdir, evaluate_at_end=False)
  return workdir


@pytest.fixture(scope="module")
def lifter_workdir(tfds_dir, tmp_path_factory) -> str:
  return _train(tfds_dir, tmp_path_factory.mktemp("infer"), "martinez_coco")


@pytest.fixture(scope="module")
def tcn_workdir(tfds_dir, tmp_path_factory) -> str:
  return _train(tfds_dir, tmp_path_factory.mktemp("infer"), "tcn243_coco")


@pytest.fixture(scope="module")
def vae_workdir(tfds_dir, tmp_path_factory) -> str:
  return _train(tfds_dir, tmp_path_factory.mktemp("infer"), "vae_unsupervised")


@pytest.fixture(scope="module")
def image_frame_workdir(tfds_dir, tmp_path_factory) -> str:
  """Martinez's own inputs: Human3.6M's 17 joints in pixels."""
  return _train(tfds_dir, tmp_path_factory.mktemp("infer"), "martinez")


def _person(frames: int, seed: int = 0) -> np.ndarray:
  """(frames, 17, 3) COCO-17 keypoints of a plausible standing person moving right at 4
  px per frame, scores 0.9."""
  rng = np.random.default_rng(seed)
  base = np.array([[320, 100], [326, 94], [314, 94], [334, 98], [306, 98], [350, 140],
                   [290, 140], [362, 200], [278, 200], [366, 255], [274, 255], [340, 260],
                   [300, 260], [342, 350], [298, 350], [344, 440], [296, 440]], np.float32)
  points = base + rng.normal(0, 2, (frames, 17, 2)) + np.arange(frames)[:, None, None] * [4, 0]
  return np.concatenate([points, np.full((frames, 17, 1), 0.9)], -1).astype(np.float32)


def _lift(workdir, keypoints):
  config, trainer, state = loop.load_trained(workdir)
  return np.asarray(jax.jit(lifting.lift_function(config, trainer, 0.3))(state, keypoints))


def test_pose_frame_models_do_not_see_position_or_size(lifter_workdir, tcn_workdir,
                                                       vae_workdir):
  """The COCO configs read the pose frame; the VAE its scale-free weak-perspective units."""
  frames = _person(30)
  moved = frames.copy()
  moved[..., :2] = frames[..., :2] * 2.5 + np.array([700.0, -150.0])
  for workdir, shape in ((lifter_workdir, (30, 17, 3)), (tcn_workdir, (1, 30, 17, 3)),
                         (vae_workdir, (30, 17, 3))):
    a, b = _lift(workdir, frames.reshape(shape)), _lift(workdir, moved.reshape(shape))
    assert np.isfinite(a).all()
    # float32 round-off of a different input: measured 3e-6 relative, 1.04e-3 mm at most.
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-3)
    np.testing.assert_array_equal(a[..., 0, :], 0.0)  # pelvis at the origin


def test_image_frame_models_are_aligned_to_their_training_person(image_frame_workdir):
  """A Martinez model reads pixels; align_to_training moves any camera's person onto the
  training split's mean person, so a moved and scaled copy lifts alike."""
  frames = _person(8)
  moved = frames.copy()
  moved[..., :2] = frames[..., :2] * 0.4 + np.array([-60.0, 900.0])
  a, b = _lift(image_frame_workdir, frames), _lift(image_frame_workdir, moved)
  np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-3)  # as above
  config, _, state = loop.load_trained(image_frame_workdir)
  pose_2d = lifting.to_model_joints(jnp.asarray(frames[..., :2]), "h36m")
  aligned = np.asarray(lifting.align_to_training(pose_2d, state.norm.mean_2d, "h36m", False))
  mean_2d = np.asarray(state.norm.mean_2d)
  # The centroid lands on the mean pose's, and the RMS spread equals the mean's.
  np.testing.assert_allclose(aligned.mean(axis=1), np.broadcast_to(mean_2d.mean(0), (8, 2)),
                             atol=1e-3)
  spread = lambda p: np.sqrt(np.mean(np.sum((p - p.mean(-2, keepdims=True))**2, -1), -1))
  np.testing.assert_allclose(spread(aligned), spread(mean_2d), rtol=1e-5)
  # A missed joint changes the transform of the others by little: here, the left wrist.
  missing = np.asarray(pose_2d).copy()
  missing[:, 13] = np.nan
  partial = np.asarray(lifting.align_to_training(jnp.asarray(missing), state.norm.mean_2d,
                                                 "h36m", False))
  shift = np.abs(np.delete(partial - aligned, 13, axis=1)).max()
  assert shift < 0.2 * spread(mean_2d)


def test_a_low_score_joint_reads_as_absent(lifter_workdir):
  frames = _person(4)
  low, missing = frames.copy(), frames.copy()
  low[:, 9, 2] = 0.1  # left wrist under the 0.3 threshold
  missing[:, 9, :2] = np.nan
  np.testing.assert_array_equal(_lift(lifter_workdir, low), _lift(lifter_workdir, missing))
  assert np.abs(_lift(lifter_workdir, low) - _lift(lifter_workdir, frames)).max() > 1.0


def _coco_results(path, keypoints: np.ndarray, frame_ids) -> str:
  entries = [{"image_id": int(i), "category_id": 1, "score": 0.95,
              "keypoints": np.round(k, 3).reshape(-1).tolist()}
             for i, k in zip(frame_ids, keypoints)]
  with open(path, "w") as f:
    json.dump(entries, f)
  return str(path)


def test_infer_interpolates_what_the_detector_missed(tcn_workdir, tmp_path):
  frames = _person(10)
  frames[..., :2] = np.round(frames[..., :2])  # exact in JSON
  frames[6, 9, 2] = 0.05  # frame 6's left wrist: below the threshold
  kept = [i for i in range(10) if i != 4]  # frame 4: nobody detected
  path = _coco_results(tmp_path / "results.json", frames[kept], kept)
  report = infer.run(tcn_workdir, str(tmp_path / "out"), keypoints=path, fps=10)
  assert report["frames"] == 10 and report["frames_without_person"] == 1
  assert report["joints_interpolated"] == 17 + 1
  out = np.load(tmp_path / "out" / "poses_3d.npz")
  assert out["poses_3d"].shape == (10, 17, 3) and np.isfinite(out["poses_3d"]).all()
  # Linear interpolation: frame 4 is the mean of frames 3 and 5, frame 6's wrist of 5 and 7.
  np.testing.assert_allclose(out["keypoints_2d"][4], (frames[3, :, :2] + frames[5, :, :2]) / 2,
                             atol=1e-4)
  np.testing.assert_allclose(out["keypoints_2d"][6, 9], (frames[5, 9, :2] + frames[7, 9, :2]) / 2,
                             atol=1e-4)
  assert out["interpolated"][4].all() and out["interpolated"][6].sum() == 1
  with open(tmp_path / "out" / "poses_3d.json") as f:
    written = json.load(f)
  assert [f["frame_id"] for f in written["frames"]] == list(range(10))
  assert written["frames"][6]["interpolated_keypoints"] == ["LWrist"]
  with av.open(str(tmp_path / "out" / "animation.mp4")) as video:
    assert sum(1 for _ in video.decode(video=0)) == 10


def test_infer_on_real_coco_annotations(lifter_workdir, real_data_dir, tmp_path):
  """The 4 COCO val2017 images of mmpose's fixtures, lifted as separate images."""
  path = os.path.join(real_data_dir, "mmpose_fixtures", "coco", "test_coco.json")
  report = infer.run(lifter_workdir, str(tmp_path), keypoints=path, frames="images",
                     animation=False)
  assert report["frames"] == 4 and report["joints_interpolated"] == 0
  out = np.load(tmp_path / "poses_3d.npz")
  assert out["poses_3d"].shape == (4, 17, 3) and np.isfinite(out["poses_3d"]).all()
  # Image 785 holds one person, whose nose the file puts at (367, 81).
  np.testing.assert_array_equal(out["keypoints_2d"][0, 0], [367.0, 81.0])


def test_export_round_trip_matches_in_process(lifter_workdir, tcn_workdir, tmp_path):
  for workdir, shapes in ((lifter_workdir, [(3, 17, 3), (7, 17, 3)]),
                          (tcn_workdir, [(1, 5, 17, 3), (2, 30, 17, 3)])):
    config, trainer, state = loop.load_trained(workdir)
    exported = export.export_model(config, trainer, state)
    out = str(tmp_path / f"{config.train.trainer}.bin")
    export.write(exported, export.metadata(config, state, exported, 0.3, workdir), out)
    lift = export.load(out)  # one compiled function for every batch (and length)
    reference = jax.jit(lifting.lift_function(config, trainer, 0.3))
    for shape in shapes:
      keypoints = _person(int(np.prod(shape[:-2])), seed=len(shape)).reshape(shape)
      np.testing.assert_allclose(np.asarray(lift(keypoints)),
                                 np.asarray(reference(state, keypoints)), rtol=2e-5, atol=2e-3)
    with open(out + ".json") as f:
      meta = json.load(f)
    assert meta["receptive_field"] == (243 if config.train.trainer == "temporal" else 1)
    assert meta["joint_names"] == list(skeleton.H36M_17.joint_names)
    assert meta["platforms"] == ["cpu", "cuda"]


def test_bad_inputs_name_what_is_wrong(lifter_workdir, tmp_path):
  with pytest.raises(ValueError, match="no keypoints: pass --keypoints"):
    infer.run(lifter_workdir, str(tmp_path))
  empty = tmp_path / "no_config"
  os.makedirs(empty / "checkpoints")
  with pytest.raises(FileNotFoundError, match="config.json.*--config"):
    loop.load_trained(str(empty))
  with pytest.raises(ValueError, match="input_depth=True"):
    lifting.check_liftable(configs.load("tcn243_depth:tiny"))
  with pytest.raises(ValueError, match="integral"):
    lifting.check_liftable(configs.load("integral_r50:tiny"))
  junk = tmp_path / "junk.bin"
  junk.write_bytes(b"not a model")
  with pytest.raises(ValueError, match="junk.bin: not a jax.export file"):
    export.load(str(junk))


def test_vae_scale_is_human36m_mean(h36m_dir):
  """VAE_RMS_RADIUS_MM is the weak-perspective unit of Human3.6M's training poses (mean
  over all 1,464,400: 452.5 mm); every 50th frame, through the
  four cameras without lens distortion (29,564 poses), gives 456.9 mm, 1% above."""
  cameras = h36m_files.read_cameras(os.path.join(h36m_dir, "cameras.h5"))
  radii = []
  for subject in h36m_files.TRAIN_SUBJECTS:
    for name in h36m_files.sequence_names(h36m_dir, subject):
      if (subject, name) in h36m_files.KNOWN_ABSENT_POSITIONS:
        continue
      world = h36m_files.read_positions_3d(h36m_files.positions_path(h36m_dir, subject, name))
      for camera_id in h36m_files.CAMERA_IDS:
        params = cameras[(subject, camera_id)]
        camera = camera_lib.Camera(*(jnp.asarray(getattr(params, n), jnp.float32)
                                     for n in ("R", "T", "f", "c", "k", "p")))
        points = np.asarray(camera_lib.world_to_camera(jnp.asarray(world[::50]), camera))
        xy = points[..., :2] / points[..., 2:]
        relative = xy[:, 1:] - xy[:, :1]
        radii.append(points[:, 0, 2] * np.sqrt(np.mean(np.sum(relative**2, -1), -1)))
  radii = np.concatenate(radii)
  assert abs(radii.mean() - lifting.VAE_RMS_RADIUS_MM) < 0.02 * lifting.VAE_RMS_RADIUS_MM


def test_the_commands(tcn_workdir, tmp_path):
  """python -m jpose.export and python -m jpose.infer, as a user runs them."""
  env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
  out = str(tmp_path / "tcn.bin")
  done = subprocess.run([sys.executable, "-m", "jpose.export", f"--workdir={tcn_workdir}",
                         f"--out={out}", "--platforms=cpu"], env=env, capture_output=True,
                        text=True, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "jpose.export: wrote" in done.stdout and os.path.isfile(out + ".json")
  keypoints = str(tmp_path / "keypoints.npy")
  np.save(keypoints, _person(12))
  done = subprocess.run([sys.executable, "-m", "jpose.infer", f"--workdir={tcn_workdir}",
                         f"--keypoints={keypoints}", f"--out={tmp_path / 'lifted'}",
                         "--noanimation"], env=env, capture_output=True, text=True, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  lifted = np.load(tmp_path / "lifted" / "poses_3d.npz")["poses_3d"]
  np.testing.assert_allclose(lifted, export.load(out)(_person(12)[None])[0], rtol=2e-5, atol=2e-3)
  done = subprocess.run([sys.executable, "-m", "jpose.infer", f"--workdir={tcn_workdir}",
                         f"--out={tmp_path / 'none'}"], env=env, capture_output=True, text=True,
                        check=False)
  assert done.returncode != 0 and "jpose.infer: no keypoints: pass --keypoints" in done.stderr


def test_infer_detects_with_blazepose_on_a_video(tcn_workdir, tmp_path):
  """--video with --blazepose_model: a stand-in landmark model (constant landmarks, built
  by tests/data/test_blazepose.py) detects, jpose.infer lifts and draws every frame."""
  pytest.importorskip("ai_edge_litert")
  from tests.inference.test_blazepose import _raw_with_aux, _stand_in_model
  model = tmp_path / "stand_in.tflite"
  model.write_bytes(_stand_in_model(_raw_with_aux(), flag=0.9))
  video_path = str(tmp_path / "clip.mp4")
  with av.open(video_path, "w") as video:
    stream = video.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
    for _ in range(6):
      frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 90, np.uint8), format="rgb24")
      video.mux(stream.encode(frame))
    video.mux(stream.encode())
  report = infer.run(tcn_workdir, str(tmp_path / "out"), video=video_path,
                     blazepose_model=str(model))
  assert report["frames"] == 6 and report["frames_without_person"] == 0
  lifted = np.load(tmp_path / "out" / "poses_3d.npz")["poses_3d"]
  assert lifted.shape == (6, 17, 3) and np.isfinite(lifted).all()
  with av.open(str(tmp_path / "out" / "animation.mp4")) as written:
    assert sum(1 for _ in written.decode(video=0)) == 6
