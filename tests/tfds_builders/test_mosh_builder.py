"""The SMPL pose/shape sample readers and the mosh builder, on the real mmpose and SPIN
files and on tiny files written here, whose every value is known (value = 1000 row +
column), so a shifted column, a dropped row or a mixed-up file shows as a wrong number."""

import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from jpose.body import priors
from jpose.data import datasets
from jpose.formats import mosh_files

MOSH_FIXTURE = "mmpose_fixtures/mosh/test_mosh.npz"  # pose (4, 72), shape (4, 10)
SPIN_FITS = "smpl_fits/lsp_orig_fits.npy"  # (1000, 82)


def _known(rows: int, columns: int, offset: float = 0.0) -> np.ndarray:
  """value[n, k] = offset + 1000 n + k: every entry names its own row and column."""
  return offset + 1000.0 * np.arange(rows)[:, None] + np.arange(columns)[None, :]


def _write_pkl(path, fields: dict) -> str:
  with open(path, "wb") as f:
    pickle.dump(fields, f, protocol=2)  # HMR's pickles are Python 2's, protocol <= 2.
  return str(path)


@pytest.fixture(scope="module")
def manual_dir(real_data_dir, tmp_path_factory) -> str:
  """The real mmpose and SPIN files, and a 3-pose neutrMosh pickle, in three folders."""
  root = tmp_path_factory.mktemp("mosh_manual")
  for folder, name, target in (("mmhuman3d", "test_mosh.npz", MOSH_FIXTURE),
                               ("spin", "lsp_orig_fits.npy", SPIN_FITS)):
    (root / folder).mkdir()
    os.symlink(os.path.join(real_data_dir, target), root / folder / name)
  (root / "neutrMosh" / "neutrSMPL_CMU" / "01").mkdir(parents=True)
  _write_pkl(root / "neutrMosh/neutrSMPL_CMU/01/01_01.pkl",
             {"poses": _known(3, 72, 0.5), "betas": np.arange(10.0), "trans": np.zeros((3, 3))})
  return str(root)


@pytest.fixture(scope="module")
def built(manual_dir, tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("mosh_tfds"))
  return datasets.prepare("mosh", data_dir, manual_dir), data_dir


# ---------------------------------------------------------------- readers on real files


def test_mmhuman3d_fixture_reads_exactly(real_data_dir):
  path = os.path.join(real_data_dir, MOSH_FIXTURE)
  poses, betas = mosh_files.read_file(path)
  with np.load(path) as raw:
    np.testing.assert_array_equal(poses, raw["pose"].astype(np.float32))
    np.testing.assert_array_equal(betas, raw["shape"].astype(np.float32))
  assert poses.shape == (4, 72) and betas.shape == (4, 10)
  assert poses.dtype == betas.dtype == np.float32


def test_spin_fits_split_into_pose_and_shape(real_data_dir):
  path = os.path.join(real_data_dir, SPIN_FITS)
  poses, betas = mosh_files.read_file(path)
  raw = np.load(path)
  assert poses.shape == (1000, 72) and betas.shape == (1000, 10)
  np.testing.assert_array_equal(betas, raw[:, 72:82].astype(np.float32))
  # The same poses through an independent reader of the same file.
  np.testing.assert_array_equal(poses.reshape(-1, 24, 3), priors.load_pose_library(path))


# ---------------------------------------------------------------- readers on written files


def test_amass_keeps_smpl_body_joints_of_a_156_wide_smplh_pose(tmp_path):
  path = tmp_path / "01_01_poses.npz"
  raw = _known(5, 156)
  np.savez(path, poses=raw, betas=np.arange(16.0), trans=np.zeros((5, 3)),
           gender=np.array("male"), mocap_framerate=np.array(120.0))
  poses, betas = mosh_files.read_file(str(path))
  # SMPL-H's first 66 values are SMPL's root and 21 body joints; its next ones are left
  # fingers, so SMPL's two hand joints (values 66-71) are zero, not raw[:, 66:72].
  np.testing.assert_array_equal(poses[:, :66], raw[:, :66].astype(np.float32))
  np.testing.assert_array_equal(poses[:, 66:], np.zeros((5, 6)))
  assert poses[4, 65] == 4065.0
  # One subject's 16 betas, the first 10 on every row.
  np.testing.assert_array_equal(betas, np.tile(np.arange(10.0), (5, 1)))


def test_amass_smpl_pose_is_kept_whole_with_per_row_betas(tmp_path):
  path = tmp_path / "smpl_poses.npz"
  np.savez(path, poses=_known(3, 72), betas=_known(3, 16, 0.25))
  poses, betas = mosh_files.read_file(str(path))
  np.testing.assert_array_equal(poses, _known(3, 72))
  np.testing.assert_array_equal(betas, _known(3, 10, 0.25))


def test_pkl_single_vector_betas_are_broadcast(tmp_path):
  path = _write_pkl(tmp_path / "seq.pkl", {"poses": _known(3, 72), "betas": np.arange(10.0)})
  poses, betas = mosh_files.read_file(path)
  np.testing.assert_array_equal(poses, _known(3, 72))
  np.testing.assert_array_equal(betas, np.tile(np.arange(10.0), (3, 1)))


def test_pkl_per_row_betas_and_new_poses(tmp_path):
  # Some neutrMosh pickles (neutrSMPL_jointLim) name their poses 'new_poses'.
  path = _write_pkl(tmp_path / "seq.pkl", {"new_poses": _known(2, 72), "betas": _known(2, 10)})
  poses, betas = mosh_files.read_file(path)
  np.testing.assert_array_equal(poses, _known(2, 72))
  np.testing.assert_array_equal(betas, _known(2, 10))


def test_pkl_chumpy_betas_read_without_chumpy(tmp_path, monkeypatch):
  # HMR's pickles come from chumpy fits: a chumpy `Ch` pickles its __dict__, array in 'x'.
  module = types.ModuleType("chumpy.ch")

  class Ch:
    def __init__(self, x):
      self.x = x

  Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
  module.Ch = Ch
  package = types.ModuleType("chumpy")
  package.ch = module
  with monkeypatch.context() as patch:  # chumpy exists only while the file is written.
    patch.setitem(sys.modules, "chumpy", package)
    patch.setitem(sys.modules, "chumpy.ch", module)
    path = _write_pkl(tmp_path / "seq.pkl", {"poses": _known(2, 72),
                                             "betas": Ch(np.arange(10.0))})
  assert b"chumpy.ch" in open(path, "rb").read() and "chumpy" not in sys.modules
  poses, betas = mosh_files.read_file(path)
  np.testing.assert_array_equal(betas, np.tile(np.arange(10.0), (2, 1)))


class _Payload:
  """Unpickling this would create a folder: a stand-in for code a file must not run."""

  def __init__(self, target):
    self.target = target

  def __reduce__(self):
    return (os.makedirs, (self.target,))


def test_pkl_refuses_a_class_off_the_allow_list(tmp_path):
  target = tmp_path / "created_by_unpickling"
  path = _write_pkl(tmp_path / "evil.pkl", {"poses": _Payload(str(target)),
                                            "betas": np.zeros(10)})
  with pytest.raises(mosh_files.MoshFileError, match="refuses to load 'os.makedirs'") as e:
    mosh_files.read_file(path)
  assert e.value.path == path and str(e.value).startswith(path)
  assert not target.exists()


def _truncated_npz(path):
  np.savez(path, pose=np.zeros((4, 72)), shape=np.zeros((4, 10)))
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])


@pytest.mark.parametrize("name, write, field, problem", [
    ("missing_betas.npz", lambda p: np.savez(p, poses=np.zeros((2, 72))), "betas", "no field"),
    ("short_pose.npz", lambda p: np.savez(p, pose=np.zeros((4, 71)), shape=np.zeros((4, 10))),
     "pose", r"shape \(4, 71\), expected \(N, 72\)"),
    ("rows.npz", lambda p: np.savez(p, pose=np.zeros((4, 72)), shape=np.zeros((3, 10))),
     "shape", r"shape \(3, 10\), expected \(10,\) or \(4, 10\)"),
    ("nan.npz", lambda p: np.savez(p, pose=np.zeros((4, 72)),
                                   shape=np.where(np.eye(4, 10) > 0, np.nan, 0.0)),
     "shape", "NaN or infinite"),
    ("inf.npz", lambda p: np.savez(p, poses=np.full((2, 156), np.inf), betas=np.zeros(16)),
     "poses", "NaN or infinite"),
    ("nine_betas.npz", lambda p: np.savez(p, poses=np.zeros((2, 72)), betas=np.zeros(9)),
     "betas", r"expected \(>= 10,\)"),
    ("text.npz", lambda p: np.savez(p, pose=np.array([["a"] * 72]), shape=np.zeros((1, 10))),
     "pose", "expected numbers"),
    ("neither.npz", lambda p: np.savez(p, trans=np.zeros((2, 3))), "poses", "neither"),
    ("narrow.npy", lambda p: np.save(p, np.zeros((5, 80))), "",
     r"\(5, 80\), expected \(N, >= 82\)"),
    ("nan.npy", lambda p: np.save(p, np.where(np.eye(5, 82) > 0, np.nan, 0.0)), "pose", "NaN"),
    ("list.pkl", lambda p: _write_pkl(p, [np.zeros(72)]), "", "expected a dict"),
    ("no_poses.pkl", lambda p: _write_pkl(p, {"betas": np.zeros(10)}), "poses", "no field"),
    ("wide.pkl", lambda p: _write_pkl(p, {"poses": np.zeros((2, 156)), "betas": np.zeros(10)}),
     "poses", r"expected \(N, 72\)"),
    ("truncated.pkl", lambda p: p.write_bytes(pickle.dumps({"poses": np.zeros((2, 72))})[:40]),
     "", "truncated"),
    ("truncated.npz", _truncated_npz, "", "not a readable .npz"),
    ("poses.txt", lambda p: p.write_text("0 " * 72), "", "unknown extension"),
])
def test_malformed_files_are_named_with_the_field(tmp_path, name, write, field, problem):
  path = tmp_path / name
  write(path)
  with pytest.raises(mosh_files.MoshFileError, match=problem) as e:
    mosh_files.read_file(str(path))
  assert e.value.path == str(path) and str(e.value).startswith(str(path))
  if field:
    assert f"field '{field}" in str(e.value)


def test_missing_file_is_named(tmp_path):
  path = str(tmp_path / "absent.npz")
  with pytest.raises(mosh_files.MoshFileError, match="file not found") as e:
    mosh_files.read_file(path)
  assert e.value.path == path


# ---------------------------------------------------------------- finding files


def test_find_files_sorted_and_skips_shape_hidden_and_h36m_test_subjects(tmp_path):
  for name in ("b/2.npz", "b/10.npz", "a.npy", "b/shape.npz", "b/._2.npz", "b/notes.txt",
               "H3.6/S1/Walking.pkl", "H3.6/S9/Walking.pkl", "H3.6/S11/Eating.pkl",
               ".hidden/x.npz"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(b"")
  found = [os.path.relpath(p, tmp_path) for p in mosh_files.find_files(str(tmp_path))]
  assert found == ["H3.6/S1/Walking.pkl", "a.npy", "b/10.npz", "b/2.npz"]


def test_find_files_follows_links_once(tmp_path):
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "x.npy").write_bytes(b"")
  os.symlink(tmp_path / "data", tmp_path / "data" / "loop")  # a link loop must end.
  assert mosh_files.find_files(str(tmp_path)) == [str(tmp_path / "data" / "x.npy")]


# ---------------------------------------------------------------- the builder


def test_built_records_equal_the_files_in_order(built, manual_dir):
  builder, _ = built
  source = builder.as_data_source(split="train")
  records = list(source)
  assert builder.info.splits["train"].num_examples == len(records) == 3 + 4 + 1000
  expected = []
  for relative in ("mmhuman3d/test_mosh.npz", "neutrMosh/neutrSMPL_CMU/01/01_01.pkl",
                   "spin/lsp_orig_fits.npy"):
    poses, betas = mosh_files.read_file(os.path.join(manual_dir, relative))
    expected += [(relative, i, poses[i], betas[i]) for i in range(len(poses))]
  for record, (relative, index, pose, betas) in zip(records, expected):
    assert record["source"].decode() == relative and record["index"] == index
    np.testing.assert_array_equal(record["pose"], pose)
    np.testing.assert_array_equal(record["betas"], betas)
  # Spot values known without the reader: the pickle's row 2 and the SPIN file's last row.
  pkl_row = records[4 + 2]
  assert pkl_row["pose"][71] == 2071.5 and list(pkl_row["betas"]) == list(range(10))
  spin = np.load(os.path.join(manual_dir, "spin/lsp_orig_fits.npy"))
  np.testing.assert_array_equal(records[-1]["betas"], spin[999, 72:].astype(np.float32))


def test_load_samples_from_the_registry_equals_the_folder(built, manual_dir):
  _, data_dir = built
  poses, betas = datasets.load_pose_samples("mosh", data_dir)
  folder_poses, folder_betas = datasets.load_pose_samples(manual_dir)
  assert poses.shape == (1007, 24, 3) and betas.shape == (1007, 10)
  np.testing.assert_array_equal(poses, folder_poses)
  np.testing.assert_array_equal(betas, folder_betas)


def test_load_samples_concatenates_a_folder_in_sorted_order(tmp_path):
  np.savez(tmp_path / "b.npz", pose=_known(2, 72, 0.5), shape=_known(2, 10, 0.5))
  (tmp_path / "a").mkdir()
  np.save(tmp_path / "a" / "fits.npy", _known(3, 82))
  poses, betas = mosh_files.load_samples(str(tmp_path))
  assert poses.shape == (5, 24, 3) and betas.shape == (5, 10)
  np.testing.assert_array_equal(poses.reshape(5, 72),
                                np.concatenate([_known(3, 72), _known(2, 72, 0.5)]))
  np.testing.assert_array_equal(betas, np.concatenate([_known(3, 82)[:, 72:],
                                                       _known(2, 10, 0.5)]))
  one, _ = mosh_files.load_samples(str(tmp_path / "b.npz"))
  np.testing.assert_array_equal(one.reshape(2, 72), _known(2, 72, 0.5))


def test_load_samples_unknown_source_is_named(tmp_path):
  with pytest.raises(mosh_files.MoshFileError, match="neither a file, a folder, nor"):
    datasets.load_pose_samples(str(tmp_path / "absent"))
  with pytest.raises(mosh_files.MoshFileError, match="neither a sample file nor a folder"):
    mosh_files.load_samples(str(tmp_path / "absent"))


def test_unreadable_file_stops_the_build_named(tmp_path):
  manual = tmp_path / "manual"
  manual.mkdir()
  np.savez(manual / "good.npz", pose=np.zeros((2, 72)), shape=np.zeros((2, 10)))
  with zipfile.ZipFile(manual / "zz_bad.npz", "w") as archive:
    archive.writestr("pose.npy", b"not an array")
  data_dir = str(tmp_path / "out")
  with pytest.raises(mosh_files.MoshFileError) as e:
    datasets.prepare("mosh", data_dir, str(manual))
  assert e.value.path == str(manual / "zz_bad.npz") and "'pose'" in str(e.value)
  assert not datasets.is_built("mosh", data_dir)


def test_manual_dir_without_samples_says_what_it_looked_for(tmp_path):
  manual = tmp_path / "manual"
  (manual / "docs").mkdir(parents=True)
  (manual / "docs" / "README.txt").write_text("no samples here")
  (manual / "shape.npz").write_bytes(b"")  # AMASS's per-subject shape: no poses.
  with pytest.raises(mosh_files.MoshFileError, match=r"holds no pose/shape sample files") as e:
    datasets.prepare("mosh", str(tmp_path / "out"), str(manual))
  assert e.value.path == str(manual)
  for looked_for in ("*.pkl", "*.npz", "*.npy", "'poses'", "'pose'"):
    assert looked_for in str(e.value)


def test_empty_manual_dir_names_the_folder_and_the_layouts(tmp_path):
  # tfds itself refuses an empty manual_dir before the builder runs, with its message
  # and the builder's instructions.
  (tmp_path / "manual").mkdir()
  with pytest.raises(AssertionError) as e:
    datasets.prepare("mosh", str(tmp_path / "out"), str(tmp_path / "manual"))
  assert str(tmp_path / "manual") in str(e.value)
  for looked_for in (".pkl", ".npz", ".npy", "'poses'", "'pose'"):
    assert looked_for in str(e.value)
