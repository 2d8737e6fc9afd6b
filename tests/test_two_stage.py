"""The two-stage video model end to end on the built-in data: train the integral
regressor (stage 1), predict every frame, train and evaluate the depth TCN on them."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import configs
from jpose import predict
from jpose.data import pipeline
from jpose.train import loop

STRIDE = 5
SEQUENCES = 2  # of each split, evenly spaced (the same two for predict and the TCN)


@pytest.fixture(scope="module")
def stage1_dir(tfds_dir, tmp_path_factory) -> str:
  config = configs.load("integral_r50:tiny")
  config.data.data_dir = tfds_dir
  workdir = str(tmp_path_factory.mktemp("stage1") / "integral")
  loop.train_and_evaluate(config, workdir, evaluate_at_end=False)
  predict.run(workdir, ["train", "test"], frame_stride=STRIDE, max_sequences=SEQUENCES,
              batch_size=64)
  return os.path.join(workdir, "stage1")


def _tcn_config(tfds_dir, stage1_dir, **model):
  config = configs.load("tcn27:tiny")
  config.data.data_dir = tfds_dir
  config.data.input_2d = "stage1"
  config.data.stage1_dir = stage1_dir
  config.data.frame_stride = STRIDE
  config.data.max_sequences = SEQUENCES
  for key, value in model.items():
    config.model[key] = value
  return config


def test_stage1_predictions_are_consistent(stage1_dir, tfds_dir):
  with open(os.path.join(stage1_dir, "metadata.json")) as f:
    meta = json.load(f)
  assert sorted(meta) == ["test", "train"] and meta["test"]["frame_stride"] == STRIDE
  assert meta["test"]["crop_size"] == 64
  test = pipeline.load_split("synthetic_h36m", "test", data_dir=tfds_dir,
                             max_sequences=SEQUENCES, frame_stride=STRIDE)
  stored = np.load(os.path.join(stage1_dir, "test.npz"))
  assert stored["pose_2d"].shape == (test.num_frames, 17, 2)
  assert stored["lengths"].tolist() == test.lengths.tolist()
  # The stored 3D, put back at the true root depth, projects onto the stored 2D: the
  # pixels, depths and 3D are one prediction.
  seq = test.seq_index
  f, c = test.camera_f[seq][:, None], test.camera_c[seq][:, None]
  root_depth = test.root_depth[:, None] + stored["depth"][:, :1]
  root = (stored["pose_2d"][:, :1] - c) * root_depth[..., None] / f
  camera = stored["pose_3d"] + np.concatenate([root, root_depth[..., None]], axis=-1)
  projected = camera[..., :2] / camera[..., 2:] * f + c
  np.testing.assert_allclose(projected, stored["pose_2d"], atol=1e-2)  # px; measured 2e-4
  np.testing.assert_allclose(stored["pose_3d"][..., 2],
                             stored["depth"] - stored["depth"][:, :1], atol=1e-3)


def test_tcn_reads_stage1_and_trains(stage1_dir, tfds_dir, tmp_path):
  config = _tcn_config(tfds_dir, stage1_dir, input_depth=True, noise_depth=0.1)
  test = pipeline.load_config_split(config, "test")
  stored = np.load(os.path.join(stage1_dir, "test.npz"))
  np.testing.assert_array_equal(test.pose_2d, stored["pose_2d"])
  np.testing.assert_array_equal(test.input_depth, stored["depth"])
  assert test.fps == 50.0 / STRIDE
  results = loop.train_and_evaluate(config, str(tmp_path / "tcn"))
  assert results["input_2d"] == "stage1"
  assert np.isfinite(results["protocol1"]["action_wise_mean"])


def test_stage1_mismatches_are_named(stage1_dir, tfds_dir, tmp_path):
  config = _tcn_config(tfds_dir, stage1_dir)
  config.data.frame_stride = 2
  with pytest.raises(ValueError, match="predicted at frame_stride 5, but config.data."
                                       "frame_stride is 2"):
    pipeline.load_config_split(config, "test")
  config = _tcn_config(tfds_dir, str(tmp_path))
  with pytest.raises(FileNotFoundError, match="no stage-1 predictions here"):
    pipeline.load_config_split(config, "test")
  config = _tcn_config(tfds_dir, stage1_dir, input_depth=True)
  config.eval.depth_noise = 0.05
  with pytest.raises(ValueError, match="set it to 0"):
    loop.build_experiment(config)
  lifter = str(tmp_path / "lifter")
  loop.train_and_evaluate(_tcn_config(tfds_dir, stage1_dir), lifter, evaluate_at_end=False)
  with pytest.raises(ValueError, match="stage-1 predictions come from an integral"):
    predict.run(lifter, ["test"])
