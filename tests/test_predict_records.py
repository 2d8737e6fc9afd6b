"""jpose.predict over recorded Human3.6M video frames: h36m_images records, built from
short videos beside the real poses, laid out as `pipeline.load_split` orders the `h36m`
dataset's frames, so that the TCN reads them (`stage1.attach`)."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import jax
import numpy as np
import pytest

import configs
from jpose import predict
from jpose.data import datasets
from jpose.formats import h36m_files
from jpose.formats import h36m_video_files
from jpose.data import image_pipeline
from jpose.data import pipeline
from jpose.formats import stage1
from jpose.evaluate import evaluator
from jpose.geometry import heatmap
from jpose.train import checkpointing
from jpose.train import loop
from tests import conftest

FRAMES = 11  # every sequence's pose files cut to this many frames, so videos stay short
SCALE = 0.25  # videos at a quarter of 1000 x 1002, intrinsics scaled to match
VIDEO_SIZE = 256
STRIDE = 2  # the TCN's frame stride: rows are video frames 0, 2, ..., 10
RECORDS = "h36m_images/stride1"
HEAD_GAIN = 300.0  # rows then differ by >= 500 mm somewhere (measured)
ACTION = "Walking 1"  # a trial every subject has; 'Walking_1' in the detection file names


def _write_manual_dir(h36m_dir: str, manual) -> None:
  """Every subject's ACTION cut to FRAMES frames (3D and detections, so that the h36m
  builder finds every sequence whole), and a video of random blocks per camera of the
  test subjects."""
  conftest.write_scaled_cameras(h36m_dir, manual / "cameras.h5", SCALE)
  for subject in h36m_files.SUBJECTS:
    source = h36m_files.positions_path(h36m_dir, subject, ACTION)
    target = h36m_files.positions_path(str(manual), subject, ACTION)
    os.makedirs(os.path.dirname(target))
    with h5py.File(source) as src, h5py.File(target, "w") as dst:
      dst["3D_positions"] = src["3D_positions"][:, :FRAMES]
    for camera_id in h36m_files.CAMERA_IDS:
      source = h36m_files.detections_path(h36m_dir, subject, ACTION, camera_id)
      target = h36m_files.detections_path(str(manual), subject, ACTION, camera_id)
      os.makedirs(os.path.dirname(target), exist_ok=True)
      with h5py.File(source) as src, h5py.File(target, "w") as dst:
        dst["poses"] = src["poses"][:FRAMES] * SCALE
  import av  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  for subject in h36m_files.TEST_SUBJECTS:
    os.makedirs(manual / f"S{subject}" / "Videos")
    for camera_id in h36m_files.CAMERA_IDS:
      path = h36m_video_files.video_path(str(manual), subject, ACTION, camera_id)
      with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=50)
        stream.width = stream.height = VIDEO_SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "0"}
        for _ in range(FRAMES):  # 16 px blocks: every frame's crop differs
          blocks = rng.integers(0, 256, (VIDEO_SIZE // 16, VIDEO_SIZE // 16, 3), np.uint8)
          frame = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1)
          for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
          container.mux(packet)


@pytest.fixture(scope="module")
def recorded(h36m_dir, tmp_path_factory) -> dict:
  """A stage-1 workdir evaluating on h36m_images/stride1:test, and its data_dir: `h36m`
  and the records of every frame of S9's and S11's ACTION, FRAMES frames long, on all
  four cameras.

  Its checkpoint is the tiny regressor's initial state with the head's kernels scaled
  x HEAD_GAIN: the N(0, 0.001^2) initial head predicts the crop centre whatever the
  image (rows alike to 3e-4 mm), and a train step costs ~30 s of compiling here.
  """
  manual = tmp_path_factory.mktemp("h36m_short")
  _write_manual_dir(h36m_dir, manual)
  data_dir = str(tmp_path_factory.mktemp("tfds_recorded"))
  datasets.prepare("h36m", data_dir, str(manual))
  datasets.prepare(RECORDS, data_dir, str(manual))
  config = configs.load("integral_r50:tiny")
  config.data.update(name="h36m", data_dir=data_dir, manual_dir=str(manual), crop_size=256)
  config.eval.images = f"{RECORDS}:test"
  exp = loop.build_experiment(config, need_train=False)
  state = exp.init_state()
  state = state.replace(params=jax.tree_util.tree_map_with_path(
      lambda path, x: x * HEAD_GAIN if "'head'" in jax.tree_util.keystr(path)
      and "kernel" in jax.tree_util.keystr(path) else x, state.params))
  workdir = str(tmp_path_factory.mktemp("stage1") / "integral")
  os.makedirs(workdir)
  with open(os.path.join(workdir, loop.CONFIG_FILE), "w") as f:
    f.write(config.to_json())
  ckpt = checkpointing.Checkpointer(workdir, 1)
  ckpt.save(state, {})
  ckpt.wait()
  return {"workdir": workdir, "data_dir": data_dir, "manual": str(manual)}


def test_recorded_frames_are_laid_out_as_the_dataset(recorded):
  # No --images: the run evaluates on h36m_images/stride1:test, so predict reads that.
  errors = predict.run(recorded["workdir"], ["test"], frame_stride=STRIDE, batch_size=16)
  stage1_dir = os.path.join(recorded["workdir"], "stage1")
  with open(os.path.join(stage1_dir, "metadata.json")) as f:
    meta = json.load(f)["test"]
  assert meta["images"] == f"{RECORDS}:test" and meta["frame_stride"] == STRIDE
  test = pipeline.load_split("h36m", "test", data_dir=recorded["data_dir"],
                             frame_stride=STRIDE)
  keys = stage1.sequence_keys(test)
  assert keys == [f"S{s}/{ACTION}/{c}" for s in (11, 9) for c in h36m_files.CAMERA_IDS]
  assert test.lengths.tolist() == [6] * 8  # frames 0, 2, ..., 10 of each
  stored = dict(np.load(os.path.join(stage1_dir, "test.npz")))
  assert stored["sequences"].tolist() == keys and stored["lengths"].tolist() == [6] * 8
  attached = stage1.attach(test, stage1_dir, "test", STRIDE)
  np.testing.assert_array_equal(attached.pose_2d, stored["pose_2d"])
  np.testing.assert_array_equal(attached.input_depth, stored["depth"])

  # The same frames found by id, in one batch, through the trainer directly.
  source = image_pipeline.Source(RECORDS, "test")
  records = image_pipeline.open_serialized(source, recorded["data_dir"])
  position = {image_pipeline.parse_record(records[i])[2]: i for i in range(len(records))}
  assert len(position) == 8 * 11  # every frame of every video
  wanted = [position[f"{key}/{t:06d}"] for key in keys for t in range(0, 11, STRIDE)]
  batch = evaluator.image_eval_dataset(source, len(wanted), 256, [records[i] for i in wanted],
                                       shard_index=0, shard_count=1)[0]
  # The records' own 3D labels are the dataset's ground truth row for row.
  np.testing.assert_allclose(batch["pose_3d"], test.pose_3d, atol=1e-3)  # mm
  np.testing.assert_allclose(batch["root_depth"], test.root_depth, rtol=1e-6)
  _, trainer, state = loop.load_trained(recorded["workdir"])
  inputs = {k: jax.numpy.asarray(batch[k]) for k in trainer.record_keys}
  pose_3d, crop = jax.jit(lambda state, inputs: (
      trainer.predict_records(state, inputs),
      trainer.predict_crops(state, inputs["image"].astype(np.float32) / 255.0)))(state, inputs)
  pose_3d, crop = np.asarray(pose_3d), np.asarray(crop)
  # Measured 0 on a CPU: the same XLA ops at another batch size; float32 spacing at
  # the stored magnitudes (up to 1.6 m and 220 px) is ~1e-4.
  np.testing.assert_allclose(stored["pose_3d"], pose_3d, atol=1e-3)  # mm
  np.testing.assert_allclose(stored["depth"], crop[..., 2], atol=1e-3)  # mm
  np.testing.assert_allclose(stored["pose_2d"],
                             heatmap.crop_to_image(crop[..., :2], batch["crop"]), atol=1e-3)
  # Every row differs from every other by over 10 cm somewhere (measured >= 500 mm), so
  # the comparison above checks the order too.
  apart = np.abs(pose_3d[:, None] - pose_3d[None]).max(axis=(2, 3))
  assert apart[~np.eye(len(apart), dtype=bool)].min() > 100.0
  mpjpe = np.linalg.norm(pose_3d - test.pose_3d, axis=-1).mean()
  assert errors["test"]["mpjpe"] == pytest.approx(mpjpe, rel=1e-4)


def test_flip_test_predicts_the_mirrored_crops_too(recorded, tmp_path):
  """--flip_test (default: the run's eval.flip_test): the stored stage-1 outputs are the
  trainer's flip-averaged crop predictions, which differ from the plain ones."""
  out = str(tmp_path / "stage1")
  predict.run(recorded["workdir"], ["test"], frame_stride=STRIDE, batch_size=16,
              out_dir=out, flip_test=True)
  stored = dict(np.load(os.path.join(out, "test.npz")))
  with open(os.path.join(out, "metadata.json")) as f:
    assert json.load(f)["test"]["flip_test"] is True
  source = image_pipeline.Source(RECORDS, "test")
  records = image_pipeline.open_serialized(source, recorded["data_dir"])
  position = {image_pipeline.parse_record(records[i])[2]: i for i in range(len(records))}
  keys = stored["sequences"].tolist()
  wanted = [position[f"{key}/{t:06d}"] for key in keys for t in range(0, 11, STRIDE)]
  batch = evaluator.image_eval_dataset(source, len(wanted), 256, [records[i] for i in wanted],
                                       shard_index=0, shard_count=1)[0]
  _, trainer, state = loop.load_trained(recorded["workdir"])
  image = jax.numpy.asarray(batch["image"])
  flipped, unflipped = jax.jit(lambda state, image: (
      trainer.predict_crops(state, image, flip_test=True),
      trainer.predict_crops(state, image)))(state, image)
  np.testing.assert_allclose(stored["depth"], np.asarray(flipped)[..., 2], atol=1e-2)  # mm
  np.testing.assert_allclose(stored["pose_2d"], heatmap.crop_to_image(
      flipped[..., :2], jax.numpy.asarray(batch["crop"])), atol=1e-2)  # px
  assert np.abs(np.asarray(flipped) - np.asarray(unflipped)).max() > 1.0  # mm or px


@pytest.mark.parametrize("drop,message", [
    (lambda key, t: key == "S11/Walking 1/55011271",
     "sequence S11/Walking 1/55011271 has 0 recorded frames at frame_stride 2, the dataset 6 "
     r"\(no records at all\)"),
    (lambda key, t: key == "S9/Walking 1/58860488" and t >= 7,  # the video ends at frame 7
     "sequence S9/Walking 1/58860488 has 4 recorded frames at frame_stride 2, the dataset 6")])
def test_missing_and_short_sequences_are_named(recorded, monkeypatch, tmp_path, drop, message):
  source = image_pipeline.Source(RECORDS, "test")
  records = image_pipeline.open_serialized(source, recorded["data_dir"])
  kept = []
  for i in range(len(records)):
    subject, action, camera, t = h36m_video_files.parse_frame_id(
        image_pipeline.parse_record(records[i])[2])
    if not drop(f"{subject}/{action}/{camera}", t):
      kept.append(records[i])
  monkeypatch.setattr(image_pipeline, "open_serialized", lambda *a, **k: kept)
  with pytest.raises(ValueError, match=f"^{RECORDS}:test: {message}"):
    predict.run(recorded["workdir"], ["test"], frame_stride=STRIDE, images=RECORDS,
                out_dir=str(tmp_path))


def test_sequences_of_unusable_videos_are_left_out_and_said(recorded, tmp_path):
  # As Human3.6M's own S11 'Directions' video on camera 54138969: a corrupt file, which
  # the h36m_images build lists; predict leaves that sequence out, and the TCN too.
  bad = "S11/Walking 1/55011271"
  manual = tmp_path / "manual"
  shutil.copytree(recorded["manual"], manual, symlinks=True)
  video = h36m_video_files.video_path(str(manual), 11, ACTION, "55011271")
  with open(video, "r+b") as f:
    f.truncate(600)  # the container's header, no frames
  data_dir = str(tmp_path / "tfds")
  datasets.prepare("h36m", data_dir, str(manual))
  builder = datasets.prepare(RECORDS, data_dir, str(manual))
  unusable = stage1.unusable_sequences(builder.info.metadata)
  # The training subjects have no videos here: their 20 are listed missing.
  assert {k for k in unusable if k.startswith(("S9/", "S11/"))} == {bad}
  assert unusable[bad].startswith("unreadable_files: ") and len(unusable) == 21
  config, _, _ = loop.load_trained(recorded["workdir"])
  config.data.update(data_dir=data_dir, manual_dir=str(manual))
  out = str(tmp_path / "stage1")
  predict.run(recorded["workdir"], ["test"], frame_stride=STRIDE, images=RECORDS,
              out_dir=out, config=config)
  with open(os.path.join(out, "metadata.json")) as f:
    meta = json.load(f)["test"]
  assert list(meta["skipped_sequences"]) == [bad] and video in meta["skipped_sequences"][bad]
  assert meta["sequences"] == 7 and meta["frames"] == 7 * 6
  stored = dict(np.load(os.path.join(out, "test.npz")))
  test = pipeline.load_split("h36m", "test", data_dir=data_dir, frame_stride=STRIDE)
  keys = stage1.sequence_keys(test)
  assert stored["sequences"].tolist() == [k for k in keys if k != bad]
  attached = stage1.attach(test, out, "test", STRIDE)
  assert stage1.sequence_keys(attached) == stored["sequences"].tolist()
  np.testing.assert_array_equal(attached.pose_2d, stored["pose_2d"])
  np.testing.assert_array_equal(attached.input_depth, stored["depth"])
  # The targets are the kept sequences' own frames.
  kept = [s for s, k in enumerate(keys) if k != bad]
  np.testing.assert_array_equal(
      attached.pose_3d, np.concatenate([test.pose_3d[test.sequence(s)] for s in kept]))
  np.testing.assert_array_equal(attached.seq_index, np.repeat(np.arange(7), 6))
  np.testing.assert_array_equal(attached.frame_index, np.tile(np.arange(6), 7))


def test_frame_stride_must_be_a_multiple_of_the_build_stride(recorded):
  # The quick build keeps every 64th frame of S9's and S11's videos: frame 0 here.
  datasets.prepare("h36m_images/quick", recorded["data_dir"], recorded["manual"])
  with pytest.raises(ValueError, match="h36m_images/quick:test: records of every 64-th video "
                                       "frame cannot give frame_stride 2"):
    predict.run(recorded["workdir"], ["test"], frame_stride=2, images="h36m_images/quick")


@pytest.mark.parametrize("images,eval_images,match", [
    ("mpii", "", "--images: .* not 'mpii'"),
    ("h36m_images/stride1:test", "", "--images: .* not 'h36m_images/stride1:test'"),
    ("", "lsp:test", "config.eval.images='lsp:test': .* not 'lsp'")])
def test_recorded_frames_must_be_an_h36m_images_dataset(images, eval_images, match):
  class Trainer:
    config = configs.load("integral_r50:tiny")
    config.eval.images = eval_images
    eval_source = image_pipeline.Source("lsp", "test") if eval_images else None
  with pytest.raises(ValueError, match=match):
    predict.recorded_frames(images, Trainer())


def test_frame_ids_read_back_in_the_dataset_naming():
  assert h36m_video_files.parse_frame_id(h36m_video_files.frame_id(9, "Walking 1", "54138969",
                                                                   64)) == (
      "S9", "Walking 1", "54138969", 64)
  # The official release's S1 names: the h36m dataset's 'Photo 1' and 'WalkDog'.
  assert h36m_video_files.parse_frame_id("S1/TakingPhoto 1/55011271/000003")[1] == "Photo 1"
  assert h36m_video_files.parse_frame_id("S1/WalkingDog/55011271/000003")[1] == "WalkDog"
  assert evaluator._record_label("S1/TakingPhoto/55011271/000003") == (
      1, h36m_files.ACTION_CLASSES.index("Photo"))
  # A build's notes name videos: back to sequence keys, in the same naming.
  assert h36m_video_files.video_sequence(
      "/h36m/S1/Videos/TakingPhoto 1.54138969.mp4: video ends before pose frame 40 of 41"
  ) == "S1/Photo 1/54138969"
  assert h36m_video_files.video_sequence("/h36m/S11/Videos/Directions.54138969.mp4") == (
      "S11/Directions/54138969")
  assert h36m_video_files.video_sequence("/h36m/S11/MyPoses/3D_positions") is None
  for bad in ("lspet/im00001.jpg", "S9/Walking/54138969", "S9/Walking/54138969/x12"):
    with pytest.raises(ValueError, match="is not an h36m_images frame id"):
      h36m_video_files.parse_frame_id(bad)


def test_record_rows_keep_every_frame_stride_th_frame_in_order():
  class Data:  # two sequences of 3 and 2 rows at frame stride 2
    subjects, actions, cameras = ["S9", "S11"], ["Walking 1", "Photo"], ["54138969"] * 2
    lengths = np.array([3, 2])
  ids = ["S11/TakingPhoto/54138969/000002", "S9/Walking 1/54138969/000004",
         "S9/Walking 1/54138969/000000", "S11/TakingPhoto/54138969/000000",
         "S9/Walking 1/54138969/000002", "S9/Walking 1/54138969/000003",
         "S9/Walking 1/54138969/000001"]
  np.testing.assert_array_equal(stage1.record_rows(ids, Data, 2, 1, "test"), [2, 4, 1, 3, 0])
