"""Pose libraries: the one reader (`priors.load_pose_library`) of SPIN's .npy fits and
`python -m jpose.fit`'s .npz, and the default library (jpose/body/pose_library.py): the
LSP fits with the shared data, else poses fitted to the built-in synthetic sequences on
first use and cached (issue 27)."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from jpose.body import fit
from jpose.body import pose_library
from jpose.body import priors

# Measured on the tests' small ANNY (16 phenotype samples): the fitted library's joints
# are 6.8 mm from the synthetic ones on average, 10.7 mm in the worst frame (the default
# conversion: the same to 0.1 mm). The bounds leave a margin.
MEAN_MPJPE_BOUND_MM = 9.0
WORST_FRAME_BOUND_MM = 14.0


@pytest.fixture(scope="module")
def lsp_fits(real_data_dir) -> np.ndarray:
  return priors.load_pose_library(os.path.join(real_data_dir, pose_library.LSP_FITS))


def test_one_reader_for_npy_fits_and_fitter_libraries(tmp_path, lsp_fits):
  """SPIN's (N, 82) fits and a fitter .npz ("pose" field) load as (N, 24, 3); malformed
  files are named."""
  assert lsp_fits.shape == (1000, 24, 3) and lsp_fits.dtype == np.float32
  path = tmp_path / "library.npz"
  np.savez(path, settings=json.dumps({"model": "anny"}), pose=lsp_fits[:5],
           betas=np.zeros((5, 10), np.float32), mpjpe_mm=np.ones(5))
  np.testing.assert_array_equal(priors.load_pose_library(str(path)), lsp_fits[:5])
  bad = tmp_path / "bad.npz"
  np.savez(bad, pose=np.zeros((5, 17, 3), np.float32))
  with pytest.raises(ValueError, match=r"bad.npz: field 'pose' has shape \(5, 17, 3\)"):
    priors.load_pose_library(str(bad))
  np.savez(bad, betas=np.zeros((5, 10)))
  with pytest.raises(ValueError, match=r"bad.npz: no 'pose' field"):
    priors.load_pose_library(str(bad))
  nan = lsp_fits[:3].copy()
  nan[1, 4, 0] = np.nan
  np.savez(bad, pose=nan)
  with pytest.raises(ValueError, match="NaN"):
    priors.load_pose_library(str(bad))
  with pytest.raises(FileNotFoundError, match="missing.npz"):
    priors.load_pose_library(str(tmp_path / "missing.npz"))
  np.save(tmp_path / "short.npy", np.zeros((4, 30), np.float32))
  with pytest.raises(ValueError, match=r"\(N, >= 72\)"):
    priors.load_pose_library(str(tmp_path / "short.npy"))


def test_the_default_is_the_lsp_fits_where_the_shared_data_has_them(real_data_dir):
  assert pose_library.default_path() == os.path.join(real_data_dir, pose_library.LSP_FITS)


def test_synthetic_targets_span_the_four_actions():
  targets = pose_library.synthetic_targets()
  assert targets.shape == (128, 17, 3) and np.all(np.isfinite(targets))
  np.testing.assert_array_equal(targets, pose_library.synthetic_targets())  # deterministic
  # Crouching bends the knees far below standing height: the library is not one pose.
  heights = targets[:, 0, 2]
  assert heights.max() - heights.min() > 200.0


def test_without_data_the_default_is_fitted_once_and_cached(small_anny, tmp_path, lsp_fits,
                                                            monkeypatch, capsys):
  monkeypatch.delenv("JPOSE_DATA_DIR")
  cache = tmp_path / "cache"
  path = pose_library.default_path(small_anny, str(cache))
  assert path == pose_library.cache_path(small_anny.name, str(cache))
  out = capsys.readouterr().out.strip().splitlines()
  assert len(out) == 1, out
  assert out[0].startswith("jpose: fitted a pose library of 128 poses") and out[0].endswith(
      f"to the built-in synthetic sequences -> {path} (first use; cached)")
  assert os.listdir(cache) == [os.path.basename(path)]  # no temporary file left
  raw = np.load(path)
  assert raw.shape == (128, 72 + small_anny.num_betas) and raw.dtype == np.float32
  library = priors.load_pose_library(path)
  assert library.shape == (128, 24, 3) == (len(library),) + lsp_fits.shape[1:]
  assert np.all(np.isfinite(library))
  # Axis-angles, as the LSP fits' (max 3.14 rad): no body joint turned past a half turn
  # (measured 2.25 rad; 4.60, twisted wrists, without `pose_library.start_prior`).
  assert np.linalg.norm(library[:, 1:], axis=-1).max() < np.pi

  # The library's bodies reproduce the synthetic joints (root-relative, as fitted).
  joints = jax.vmap(fit.regressed_joints, in_axes=(None, 0, 0))(
      small_anny, library, raw[:, 72:])
  joints = np.asarray(joints) * fit.MM_PER_M
  targets = pose_library.synthetic_targets()
  error = np.linalg.norm((joints - joints[:, :1]) - (targets - targets[:, :1]), axis=-1)
  assert error.mean() < MEAN_MPJPE_BOUND_MM, error.mean()
  assert error.mean(axis=1).max() < WORST_FRAME_BOUND_MM, error.mean(axis=1).max()

  # Later uses read the cache: no fit, no message.
  monkeypatch.setattr(pose_library, "fit_synthetic", lambda model: pytest.fail("refitted"))
  assert pose_library.default_path(small_anny, str(cache)) == path
  assert capsys.readouterr().out == ""
