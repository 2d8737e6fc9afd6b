"""The h36m tfds builder on a real subset, and its errors on bad input."""

import os
import shutil

import chex
import numpy as np
import pytest

from jpose.data import datasets
from jpose.data import h36m_files


@pytest.fixture(scope="module")
def subset_builder(h36m_subset_dir, tfds_dir):
  # The session's data_dir, so other modules' tests on the subset reuse this build.
  return datasets.prepare("h36m", tfds_dir, h36m_subset_dir)


def test_subset_counts_and_shapes(subset_builder):
  info = subset_builder.info
  # Every subject holds two Walking and two Directions trials; x 4 cameras.
  assert set(info.splits) == {"train", "test"}
  assert info.splits["train"].num_examples == 5 * 4 * 4
  assert info.splits["test"].num_examples == 2 * 4 * 4
  source = subset_builder.as_data_source(split="test")
  keys = set()
  for i in range(len(source)):
    r = source[i]
    t = r["pose_3d"].shape[0]
    chex.assert_shape([r["pose_3d"], r["pose_3d_world"]], (t, 17, 3))
    chex.assert_shape([r["pose_2d_gt"], r["pose_2d_sh"]], (t, 17, 2))
    chex.assert_shape(r["camera_R"], (3, 3))
    assert r["fps"] == 50.0
    keys.add((r["subject"].decode(), r["action"].decode(), r["camera"].decode()))
    # Camera-frame depth is positive: the subject is in front of every camera.
    assert (r["pose_3d"][..., 2] > 1000).all()
  assert ("S9", "Walking 1", "54138969") in keys and ("S11", "Directions", "60457274") in keys


def test_missing_detection_is_named_and_nan(subset_builder):
  missing = subset_builder.info.metadata["missing_detections"]
  assert any(p.endswith("S11/StackedHourglass/Directions.54138969.h5") for p in missing)
  source = subset_builder.as_data_source(split="test")
  for i in range(len(source)):
    r = source[i]
    if (r["subject"], r["action"], r["camera"]) == (b"S11", b"Directions", b"54138969"):
      assert np.isnan(r["pose_2d_sh"]).all() and np.isfinite(r["pose_2d_gt"]).all()
      return
  pytest.fail("S11 Directions 54138969 not built")


def test_s9_walking_record_matches_the_source_file(subset_builder, h36m_dir):
  world = h36m_files.read_positions_3d(h36m_files.positions_path(h36m_dir, 9, "Walking"))
  source = subset_builder.as_data_source(split="test")
  for i in range(len(source)):
    r = source[i]
    if (r["subject"], r["action"]) == (b"S9", b"Walking"):
      np.testing.assert_array_equal(r["pose_3d_world"], world)
      return
  pytest.fail("S9 Walking not built")


def _copy_subset(src, dst):
  shutil.copytree(src, dst, symlinks=False)
  return str(dst)


def _link_subset(src, dst):
  shutil.copytree(src, dst, symlinks=True)  # new folders, the same linked files
  return str(dst)


def test_missing_subject_folder_is_an_error(h36m_subset_dir, tmp_path):
  manual = _link_subset(h36m_subset_dir, tmp_path / "manual")
  shutil.rmtree(os.path.join(manual, "S6"))
  with pytest.raises(h36m_files.H36mFileError, match=r"manual/S6: subject folder not found"):
    datasets.prepare("h36m", str(tmp_path / "out"), manual)
  assert not datasets.is_built("h36m", str(tmp_path / "out"))


def test_missing_files_other_than_the_releases_gaps_are_errors(h36m_subset_dir, tmp_path):
  manual = _link_subset(h36m_subset_dir, tmp_path / "manual")
  os.remove(os.path.join(manual, "S1", "MyPoses", "3D_positions", "Walking 1.h5"))
  with pytest.raises(h36m_files.H36mFileError, match=r"S1/MyPoses/3D_positions/Walking 1.h5: "
                                                     r"3D pose file not found"):
    datasets.prepare("h36m", str(tmp_path / "out"), manual)
  manual = _link_subset(h36m_subset_dir, tmp_path / "manual2")
  os.remove(os.path.join(manual, "S8", "StackedHourglass", "Walking.55011271.h5"))
  with pytest.raises(h36m_files.H36mFileError, match=r"S8/StackedHourglass/Walking.55011271.h5: "
                                                     r"detection file not found"):
    datasets.prepare("h36m", str(tmp_path / "out2"), manual)


def test_truncated_h5_names_the_file(h36m_subset_dir, tmp_path):
  manual = _copy_subset(h36m_subset_dir, tmp_path / "manual")
  bad = os.path.join(manual, "S9", "MyPoses", "3D_positions", "Walking.h5")
  with open(bad, "rb") as f:
    head = f.read(os.path.getsize(bad) // 2)
  with open(bad, "wb") as f:
    f.write(head)
  with pytest.raises(h36m_files.H36mFileError, match="Walking.h5.*truncated or corrupt"):
    datasets.prepare("h36m", str(tmp_path / "out"), manual)


def test_missing_cameras_h5_names_the_file(h36m_subset_dir, tmp_path):
  manual = _copy_subset(h36m_subset_dir, tmp_path / "manual")
  os.remove(os.path.join(manual, "cameras.h5"))
  with pytest.raises(h36m_files.H36mFileError, match=r"cameras\.h5: file not found"):
    datasets.prepare("h36m", str(tmp_path / "out"), manual)


def test_wrong_shape_names_the_file_and_shape(tmp_path):
  import h5py
  path = str(tmp_path / "Walking.h5")
  with h5py.File(path, "w") as f:
    f["3D_positions"] = np.zeros((51, 10), np.float32)
  with pytest.raises(h36m_files.H36mFileError, match=r"Walking.h5.*\(51, 10\).*\(96, 'T'\)"):
    h36m_files.read_positions_3d(path)


def test_failed_rebuild_keeps_the_built_dataset(h36m_subset_dir, tmp_path):
  manual = _copy_subset(h36m_subset_dir, tmp_path / "manual")
  data_dir = str(tmp_path / "out")
  built = datasets.prepare("h36m", data_dir, manual)
  before = sorted(os.listdir(built.data_dir))
  os.remove(os.path.join(manual, "cameras.h5"))
  with pytest.raises(h36m_files.H36mFileError):
    datasets.prepare("h36m", data_dir, manual, overwrite=True)
  assert sorted(os.listdir(built.data_dir)) == before
  again = datasets.get_builder("h36m", data_dir).as_data_source(split="test")
  assert len(again) == 32
  assert [p for p in os.listdir(data_dir) if p.startswith(".h36m-build")] == []


def test_unknown_dataset_and_missing_manual_dir_are_named(tmp_path):
  with pytest.raises(KeyError, match="data.name: unknown dataset 'h37m'"):
    datasets.prepare("h37m", str(tmp_path))
  with pytest.raises(ValueError, match="manual_dir"):
    datasets.prepare("h36m", str(tmp_path))
