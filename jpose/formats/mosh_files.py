"""Readers of SMPL pose/shape sample files (MoSh fits of mocap), the real bodies that
HMR's adversarial prior learns from; each gives poses (N, 72) and betas (N, 10) float32.

  HMR neutrMosh `*.pkl`   pickled dict: 'poses' (N, 72) ('new_poses' in some), 'betas'
                          (10,) or (N, 10); Python 2 pickles, possibly chumpy arrays
  AMASS `*.npz`           'poses' (N, 72 | 156 SMPL-H | 165 SMPL-X), 'betas' (>= 10,) or
                          (N, >= 10)
  mmhuman3d / mmpose `.npz`  'pose' (N, 72), 'shape' (N, 10)
  SPIN `.npy`             (N, >= 82): 72 pose, then 10 shape

Poses are axis-angles of SMPL's 24 joints (`smpl.JOINT_NAMES`), root first. Every reader
raises `MoshFileError` naming the file and the field that is missing or malformed.
"""

from __future__ import annotations

import os

from absl import logging
import numpy as np

from jpose import file_errors
from jpose.body import smpl

POSE_SIZE = 3 * smpl.NUM_JOINTS  # 72
NUM_BETAS = 10
EXTENSIONS = (".pkl", ".npz", ".npy")
# SMPL-H / SMPL-X poses (AMASS) share SMPL's first 22 joints (root + 21 body joints,
# 66 values); their next values are fingers (SMPL-H) or jaw and eyes (SMPL-X), not
# SMPL's two hand joints, which are left at zero rotation instead.
BODY_POSE_SIZE = 66
# AMASS keeps each subject's body shape in a `shape.npz` beside its sequences: betas and
# gender, no poses, so it holds no samples.
SKIPPED_NAMES = ("shape.npz",)
# Human3.6M's test subjects: their folders (neutrSMPL_H3.6/S9, S11) are left out, as
# HMR's own conversion did, so that a pose prior never sees test poses.
H36M_TEST_FOLDERS = ("S9", "S11")
LOOKED_FOR = ("HMR neutrMosh *.pkl ('poses', 'betas'), AMASS *.npz ('poses', 'betas'), "
              "mmhuman3d *.npz ('pose', 'shape'), SPIN *.npy ((N, 82) pose then shape)")


class MoshFileError(file_errors.SourceFileError):
  """A pose/shape sample file is missing, unreadable or holds a malformed field."""


def read_file(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Any supported file -> (poses (N, 72), betas (N, 10)) float32; `.npz` files are
  told apart by their fields ('poses': AMASS, 'pose': mmhuman3d)."""
  file_errors.require_file(path, MoshFileError)
  extension = os.path.splitext(path)[1].lower()
  if extension == ".pkl":
    return read_neutr_mosh_pkl(path)
  if extension == ".npy":
    return read_spin_npy(path)
  if extension == ".npz":
    _, names = file_errors.read_npz(path, MoshFileError, fields=())
    if "poses" in names:
      return read_amass_npz(path)
    if "pose" in names:
      return read_mmhuman3d_npz(path)
    raise MoshFileError(path, f"has neither field 'poses' (AMASS) nor 'pose' (mmhuman3d) "
                        f"(fields: {sorted(names)})")
  raise MoshFileError(path, f"unknown extension '{extension}': expected one of {EXTENSIONS}")


def read_neutr_mosh_pkl(path: str) -> tuple[np.ndarray, np.ndarray]:
  """HMR's neutrMosh pickle: a dict with 'poses' (or 'new_poses') (N, 72) and 'betas'
  (10,), broadcast to every row, or (N, 10).

  Read with `smpl`'s allow-listed unpickler: numpy arrays and chumpy stand-ins load,
  any other class is refused, so a file cannot run code."""
  file_errors.require_file(path, MoshFileError)
  try:
    # smpl's reader, not a copy: one allow-list of classes for every pickle jpose reads.
    fields = smpl._read_pkl(path)
  except smpl.SmplFileError as e:
    raise MoshFileError(path, str(e).removeprefix(f"{path}: ")) from e
  except OSError as e:
    raise MoshFileError(path, f"cannot read: {e}") from e
  pose_field = "new_poses" if "poses" not in fields and "new_poses" in fields else "poses"
  poses = _pose_rows(path, pose_field, _field(fields, pose_field, path), exact=True)
  return poses, _beta_rows(path, "betas", _field(fields, "betas", path), len(poses), exact=True)


def read_amass_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
  """An AMASS sequence: 'poses' (N, 72) SMPL, or wider SMPL-H (156) / SMPL-X (165), whose
  first 22 joints are SMPL's (the two hand joints are then zero); 'betas' (>= 10,) or
  (N, >= 10), of which the first 10."""
  poses, betas = _npz_fields(path, "poses", "betas")
  poses = _pose_rows(path, "poses", poses, exact=False)
  return poses, _beta_rows(path, "betas", betas, len(poses), exact=False)


def read_mmhuman3d_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
  """mmhuman3d / mmpose's mosh `.npz`: 'pose' (N, 72), 'shape' (N, 10)."""
  poses, betas = _npz_fields(path, "pose", "shape")
  poses = _pose_rows(path, "pose", poses, exact=True)
  return poses, _beta_rows(path, "shape", betas, len(poses), exact=True)


def read_spin_npy(path: str) -> tuple[np.ndarray, np.ndarray]:
  """SPIN's static fits (e.g. `lsp_orig_fits.npy`): (N, >= 82), 72 pose then 10 shape."""
  file_errors.require_file(path, MoshFileError)
  try:
    value = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError) as e:
    raise MoshFileError(path, f"not a readable .npy array: {e}") from e
  if not isinstance(value, np.ndarray):
    raise MoshFileError(path, "expected a .npy array, got an .npz archive")
  width = POSE_SIZE + NUM_BETAS
  if value.ndim != 2 or value.shape[1] < width:
    raise MoshFileError(path, f"array has shape {value.shape}, expected (N, >= {width}): "
                        f"{POSE_SIZE} pose values then {NUM_BETAS} shape values")
  # The pose is taken whole: SPIN's columns are SMPL's own 24 joints.
  poses = _pose_rows(path, "pose (columns 0-71)", value[:, :POSE_SIZE], exact=True)
  return poses, _beta_rows(path, "shape (columns 72-81)", value[:, POSE_SIZE:width],
                           len(poses), exact=True)


def find_files(root: str) -> list[str]:
  """Every sample file under folder `root` (recursive, following links), sorted by path
  relative to root. Leaves out hidden files (macOS '._*' copies), AMASS `shape.npz`, and
  Human3.6M's test subjects (folders S9, S11). Raises if there is none."""
  if not os.path.isdir(root):
    raise MoshFileError(root, "folder not found")
  found, excluded, seen = [], [], set()
  for folder, subfolders, names in os.walk(root, followlinks=True):
    # Links are followed (datasets are often linked in); a link loop must not recurse.
    real = os.path.realpath(folder)
    if real in seen:
      subfolders[:] = []
      continue
    seen.add(real)
    subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    relative_folder = os.path.relpath(folder, root)
    in_test_subject = any(part in H36M_TEST_FOLDERS
                          for part in relative_folder.split(os.sep))
    for name in names:
      if (name.startswith(".") or name in SKIPPED_NAMES
          or os.path.splitext(name)[1].lower() not in EXTENSIONS):
        continue
      (excluded if in_test_subject else found).append(os.path.join(folder, name))
  if excluded:
    logging.warning("mosh: left out %d file(s) of Human3.6M test subjects %s under %s",
                    len(excluded), H36M_TEST_FOLDERS, root)
  if not found:
    raise MoshFileError(root, f"holds no pose/shape sample files; looked for {LOOKED_FOR}"
                        + (f" (left out {len(excluded)} of Human3.6M test subjects)"
                           if excluded else ""))
  return sorted(found, key=lambda path: os.path.relpath(path, root).split(os.sep))


def load_samples(source: str) -> tuple[np.ndarray, np.ndarray]:
  """Pose/shape samples -> (poses (N, 24, 3), betas (N, 10)) float32.

  source: a sample file, or a folder of them (`find_files` order). A built dataset such
    as 'mosh' is read by `jpose.data.datasets.load_pose_samples`.
  """
  if os.path.isdir(source):
    paths = find_files(source)
  elif os.path.isfile(source):
    paths = [source]
  else:
    raise MoshFileError(source, "is neither a sample file nor a folder of them")
  parts = [read_file(path) for path in paths]
  poses = np.concatenate([p for p, _ in parts])
  if not len(poses):
    raise MoshFileError(source, "holds no samples (every file has zero rows)")
  return (poses.reshape(-1, smpl.NUM_JOINTS, 3),
          np.concatenate([b for _, b in parts]))


def _npz_fields(path: str, *fields: str) -> list[np.ndarray]:
  """The named arrays of an `.npz` archive, in order; a missing one is named."""
  arrays, names = file_errors.read_npz(path, MoshFileError, fields)
  for field in fields:
    if field not in arrays:
      raise MoshFileError(path, f"no field '{field}' (fields: {sorted(names)})")
  return [arrays[field] for field in fields]


def _field(fields: dict, field: str, path: str) -> np.ndarray:
  """A pickled field as a dense array (a chumpy array's stored value)."""
  if field not in fields:
    raise MoshFileError(path, f"no field '{field}' (fields: {sorted(map(str, fields))})")
  try:
    return smpl._dense(fields[field], field, path)
  except smpl.SmplFileError as e:
    raise MoshFileError(path, str(e).removeprefix(f"{path}: ")) from e


def _numeric(path: str, field: str, value) -> np.ndarray:
  value = np.asarray(value)
  if value.dtype.kind not in "fiu":
    raise MoshFileError(path, f"field '{field}' has dtype {value.dtype}, expected numbers")
  return value


def _finite(path: str, field: str, value: np.ndarray) -> np.ndarray:
  # Only the values kept are checked: NaN in dropped SMPL-H finger columns is harmless.
  if not np.all(np.isfinite(value)):
    raise MoshFileError(path, f"field '{field}' contains NaN or infinite values")
  return value.astype(np.float32)


def _pose_rows(path: str, field: str, value, exact: bool) -> np.ndarray:
  """(N, 72) exactly, or (N, >= 72) where a wider pose is SMPL-H / SMPL-X's."""
  value = _numeric(path, field, value)
  if value.ndim != 2 or value.shape[1] < POSE_SIZE or (exact and value.shape[1] != POSE_SIZE):
    expected = f"(N, {POSE_SIZE})" if exact else f"(N, >= {POSE_SIZE})"
    raise MoshFileError(path, f"field '{field}' has shape {value.shape}, expected {expected}")
  if value.shape[1] == POSE_SIZE:
    return _finite(path, field, value)
  poses = np.zeros((value.shape[0], POSE_SIZE), np.float32)
  poses[:, :BODY_POSE_SIZE] = _finite(path, field, value[:, :BODY_POSE_SIZE])
  return poses


def _beta_rows(path: str, field: str, value, num_rows: int, exact: bool) -> np.ndarray:
  """(10,) broadcast to num_rows (one subject's shape), or (num_rows, 10); with
  exact=False, 10 or more betas of which the first 10 (SMPL's leading shape components)."""
  value = _numeric(path, field, value)
  width = value.shape[-1] if value.ndim else 0
  rows_ok = value.ndim == 1 or (value.ndim == 2 and value.shape[0] == num_rows)
  if not rows_ok or width < NUM_BETAS or (exact and width != NUM_BETAS):
    size = NUM_BETAS if exact else f">= {NUM_BETAS}"
    raise MoshFileError(path, f"field '{field}' has shape {value.shape}, expected ({size},) "
                        f"or ({num_rows}, {size}) for the {num_rows} poses")
  betas = _finite(path, field, value[..., :NUM_BETAS])
  return np.broadcast_to(betas, (num_rows, NUM_BETAS)).copy()
