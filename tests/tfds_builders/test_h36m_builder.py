"""The h36m tfds builder on a real subset, and its errors on bad input."""

import os
import shutil

import chex
import numpy as np
import pytest

from jpose.data import datasets
from jpose.formats import h36m_files


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


@pytest.fixture(scope="module")
def h36m_mini_dir(h36m_dir, tmp_path_factory):
  """A manual_dir of 8 sequences linked from the real data: every subject's 'Directions 1',
  and S11's 'Directions', whose 54138969 detections the release lacks."""
  root = tmp_path_factory.mktemp("h36m_mini")
  os.symlink(os.path.join(h36m_dir, "cameras.h5"), root / "cameras.h5")
  sequences = [(s, "Directions 1") for s in h36m_files.SUBJECTS] + [(11, "Directions")]
  for subject, action in sequences:
    paths = [h36m_files.positions_path(h36m_dir, subject, action)] + [
        h36m_files.detections_path(h36m_dir, subject, action, c) for c in h36m_files.CAMERA_IDS]
    for path in paths:
      if os.path.exists(path):
        link = root / os.path.relpath(path, h36m_dir)
        os.makedirs(link.parent, exist_ok=True)
        os.symlink(path, link)
  return str(root)


def _records(data_dir):
  builder = datasets.get_builder("h36m", data_dir)
  return {split: [builder.as_data_source(split=split)[i]
                  for i in range(builder.info.splits[split].num_examples)]
          for split in ("train", "test")}


def _assert_same_bytes(a, b):
  assert a.keys() == b.keys()
  for name in a:
    x, y = np.asarray(a[name]), np.asarray(b[name])
    assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name


@pytest.fixture(scope="module")
def mini_builds(h36m_mini_dir, tmp_path_factory):
  """{workers: {split: records}} for builds of the mini folder with 1 and 3 workers."""
  built = {}
  for workers in ("1", "3"):
    data_dir = str(tmp_path_factory.mktemp(f"tfds_workers{workers}"))
    with pytest.MonkeyPatch.context() as monkeypatch:
      monkeypatch.setenv("JPOSE_PREPARE_WORKERS", workers)
      datasets.prepare("h36m", data_dir, h36m_mini_dir)
    built[workers] = _records(data_dir)
  return built


def test_parallel_build_equals_one_worker_build(mini_builds):
  assert [len(mini_builds["1"][s]) for s in ("train", "test")] == [5 * 4, 3 * 4]
  for split in ("train", "test"):  # the same records, bit for bit, in the same order
    for one, many in zip(mini_builds["1"][split], mini_builds["3"][split]):
      _assert_same_bytes(one, many)


def test_records_equal_the_unpadded_projection(mini_builds, h36m_mini_dir):
  # The builder pads each sequence to a power of two before projecting (fewer compiles);
  # every stored frame must be the one projected from the sequence alone.
  from jpose.formats import records
  cameras = h36m_files.read_cameras(os.path.join(h36m_mini_dir, "cameras.h5"))
  checked = 0
  for record in mini_builds["3"]["test"]:
    subject, action, camera_id = (record[k].decode() for k in ("subject", "action", "camera"))
    world = h36m_files.read_positions_3d(
        h36m_files.positions_path(h36m_mini_dir, int(subject[1:]), action))
    if world.shape[0] in (1024, 2048, 4096, 8192):
      continue  # no padding to check
    cam = cameras[(int(subject[1:]), camera_id)]
    want = records.sequence_record(
        subject=subject, action=action, camera_id=camera_id, fps=h36m_files.FPS,
        camera={n: getattr(cam, n) for n in ("R", "T", "f", "c", "k", "p")},
        pose_3d_world=world, pose_2d_sh=record["pose_2d_sh"])
    for name in ("pose_3d", "pose_3d_world", "pose_2d_gt"):
      assert want[name].tobytes() == np.asarray(record[name]).tobytes(), (subject, action, name)
    checked += 1
  assert checked == 3 * 4


def test_a_workers_error_names_the_file(h36m_mini_dir, tmp_path, monkeypatch):
  manual = _link_subset(h36m_mini_dir, tmp_path / "manual")
  bad = os.path.join(manual, "S1", "StackedHourglass", "Directions_1.58860488.h5")
  os.remove(bad)
  shutil.copy(os.path.join(h36m_mini_dir, "cameras.h5"), bad)  # an HDF5 file without 'poses'
  monkeypatch.setenv("JPOSE_PREPARE_WORKERS", "2")
  with pytest.raises(h36m_files.H36mFileError,
                     match=r"S1/StackedHourglass/Directions_1.58860488.h5: dataset 'poses' "
                           r"is missing"):
    datasets.prepare("h36m", str(tmp_path / "out"), manual)
  assert not datasets.is_built("h36m", str(tmp_path / "out"))


def test_bad_worker_count_is_named(h36m_mini_dir, tmp_path, monkeypatch):
  monkeypatch.setenv("JPOSE_PREPARE_WORKERS", "0")
  with pytest.raises(ValueError, match=r"\$JPOSE_PREPARE_WORKERS: '0' is not a positive"):
    datasets.prepare("h36m", str(tmp_path), h36m_mini_dir)
  assert not datasets.is_built("h36m", str(tmp_path))
