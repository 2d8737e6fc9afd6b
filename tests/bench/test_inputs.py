"""jpose.bench.inputs: the rates of the sequence pipeline, the image pipeline (and its JPEG
decoders) and the on-device augmentation."""

import os

import pytest

import configs
from jpose.bench import inputs
from jpose.data import image_pipeline


def test_input_pipeline_rate(tfds_dir):
  config = configs.load("tcn27:tiny")
  config.data.data_dir = tfds_dir
  result = inputs.benchmark_input_pipeline(config, batch_size=64, steps=20)
  assert result["batch_keys"] == ["frame_id", "flip"] and result["receptive_field"] == 27
  assert result["samples_per_s"] == pytest.approx(64 * result["batches_per_s"], rel=0.01)
  assert result["batches_per_s"] > 0 and result["host_windows_per_s"] > 0


def test_image_pipeline_throughput_reports_rates(image_records_dir):
  result = inputs.image_pipeline_throughput([image_pipeline.Source("lsp")], batch_size=8,
                                            num_batches=2, data_dir=image_records_dir)
  assert result["images_per_s"] > 0 and result["decode_simplejpeg_images_per_s"] > 0
  assert result["batch_size"] == 8 and result["threads"] == 0


def test_image_pipeline_rate_on_lsp_subset(real_data_dir, tmp_path):
  lspet = tmp_path / "manual" / "lspet"
  (lspet / "images").mkdir(parents=True)
  os.symlink(os.path.join(real_data_dir, "lspet_subset/joints.mat"), lspet / "joints.mat")
  for i in range(1, 9):
    name = f"im{i:05d}.jpg"
    os.symlink(os.path.join(real_data_dir, "lspet_subset/images", name), lspet / "images" / name)
  result = inputs.benchmark_image_pipeline("lsp", batch_size=4, steps=3,
                                           data_dir=str(tmp_path / "tfds"),
                                           manual_dir=str(tmp_path / "manual"))
  assert result["model"] == "image_pipeline" and result["size"] == 256
  assert result["images_per_s"] > 0 and result["decode_simplejpeg_images_per_s"] > 0


def test_augment_throughput_runs():
  assert inputs.augment_throughput(size=16, batch=2, repeats=1) > 0
