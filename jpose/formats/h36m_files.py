"""Readers for the Human3.6M files in the layout released with Martinez et al. 2017.

  cameras.h5                                      subject{S}/camera{1..4}/{R,T,f,c,k,p,Name}
  S{S}/MyPoses/3D_positions/<Action>[ N].h5      '3D_positions' (96, T), world mm, 50 fps
  S{S}/StackedHourglass/<Action>[_N].<cam>.h5    'poses' (T, 16, 2), pixels, MPII order

Every reader raises `H36mFileError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import os
import re

import h5py
import numpy as np

from jpose import file_errors
from jpose.geometry import skeleton

SUBJECTS = (1, 5, 6, 7, 8, 9, 11)
TRAIN_SUBJECTS = (1, 5, 6, 7, 8)
TEST_SUBJECTS = (9, 11)
CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
FPS = 50.0
# The 15 action classes (a sequence "Walking 1" is of class "Walking").
ACTION_CLASSES = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo",
                  "Posing", "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting",
                  "WalkDog", "WalkTogether", "Walking")
# The source files that the public release lacks; a build skips these (and lists them),
# and stops on any other missing file.
KNOWN_ABSENT_POSITIONS = frozenset({(5, "Discussion 2"), (5, "Discussion 3"), (7, "Discussion"),
                                    (7, "SittingDown 1"), (9, "Discussion 1")})
KNOWN_ABSENT_DETECTIONS = frozenset({(11, "Directions", "54138969")})


class H36mFileError(file_errors.SourceFileError):
  """A Human3.6M source file is missing, unreadable or holds arrays of the wrong shape."""


@dataclasses.dataclass(frozen=True)
class CameraParams:
  """One calibrated camera; `R` is world-to-camera (cameras.h5 stores its transpose)."""

  camera_id: str
  R: np.ndarray  # (3, 3)
  T: np.ndarray  # (3,) camera centre, world mm
  f: np.ndarray  # (2,)
  c: np.ndarray  # (2,)
  k: np.ndarray  # (3,)
  p: np.ndarray  # (2,)


def _open_h5(path: str) -> h5py.File:
  file_errors.require_file(path, H36mFileError)
  try:
    return h5py.File(path, "r")
  except OSError as e:
    raise H36mFileError(path, f"not a readable HDF5 file (truncated or corrupt?): {e}") from e


def _read_array(h5: h5py.File, path: str, key: str, shape: tuple) -> np.ndarray:
  """Reads h5[key] and checks its shape; None in `shape` matches any size."""
  if key not in h5:
    raise H36mFileError(path, f"dataset '{key}' is missing")
  try:
    value = np.asarray(h5[key][()])
  except (OSError, RuntimeError, KeyError) as e:
    raise H36mFileError(path, f"dataset '{key}' cannot be read (corrupt?): {e}") from e
  if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
    want = tuple("T" if s is None else s for s in shape)
    raise H36mFileError(path, f"dataset '{key}' has shape {value.shape}, expected {want}")
  if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
    raise H36mFileError(path, f"dataset '{key}' contains NaN or infinite values")
  return value


def read_cameras(path: str) -> dict[tuple[int, str], CameraParams]:
  """cameras.h5 -> {(subject, camera_id): CameraParams} for all subjects and 4 cameras."""
  cameras = {}
  with _open_h5(path) as h5:
    for subject in SUBJECTS:
      for index in range(1, 5):
        group = f"subject{subject}/camera{index}"
        name = _read_array(h5, path, f"{group}/Name", (None, 1))
        camera_id = "".join(chr(int(v)) for v in name.reshape(-1))
        if camera_id not in CAMERA_IDS:
          raise H36mFileError(path, f"{group}/Name is '{camera_id}', not a Human3.6M camera id")
        cameras[(subject, camera_id)] = CameraParams(
            camera_id=camera_id,
            R=_read_array(h5, path, f"{group}/R", (3, 3)).T.astype(np.float64),
            T=_read_array(h5, path, f"{group}/T", (3, 1)).reshape(3).astype(np.float64),
            f=_read_array(h5, path, f"{group}/f", (2, 1)).reshape(2).astype(np.float64),
            c=_read_array(h5, path, f"{group}/c", (2, 1)).reshape(2).astype(np.float64),
            k=_read_array(h5, path, f"{group}/k", (3, 1)).reshape(3).astype(np.float64),
            p=_read_array(h5, path, f"{group}/p", (2, 1)).reshape(2).astype(np.float64),
        )
  return cameras


def read_positions_3d(path: str) -> np.ndarray:
  """A MyPoses file -> (T, 17, 3) world-frame joints in mm (the 17-joint subset)."""
  with _open_h5(path) as h5:
    raw = _read_array(h5, path, "3D_positions", (96, None))
  if raw.shape[1] == 0:
    raise H36mFileError(path, "dataset '3D_positions' has no frames")
  joints32 = raw.T.reshape(-1, 32, 3)
  return joints32[:, skeleton.H36M_17_FROM_32].astype(np.float32)


def read_detections(path: str) -> np.ndarray:
  """A StackedHourglass file -> (T, 17, 2) pixels in H36M-17 order, NaN for Neck/Nose."""
  with _open_h5(path) as h5:
    raw = _read_array(h5, path, "poses", (None, 16, 2))
  return skeleton.convert_joints(raw.astype(np.float32), skeleton.MPII_16_TO_H36M_17)


def sequence_names(root: str, subject: int) -> list[str]:
  """The sequences of one subject, in Human3.6M naming ('Walking', 'Walking 1').

  The detection files list every recorded sequence, including the ones whose 3D file
  is missing from a release, so they define what a complete subject holds.
  """
  directory = os.path.join(root, f"S{subject}", "StackedHourglass")
  if not os.path.isdir(directory):
    raise H36mFileError(directory, "directory not found")
  names = set()
  for filename in os.listdir(directory):
    match = re.fullmatch(r"(.+)\.(\d+)\.h5", filename)
    if match:
      names.add(match.group(1).replace("_", " "))
  if not names:
    raise H36mFileError(directory, "holds no '<Action>.<camera>.h5' detection files")
  return sorted(names)


def positions_path(root: str, subject: int, action: str) -> str:
  return os.path.join(root, f"S{subject}", "MyPoses", "3D_positions", f"{action}.h5")


def detections_path(root: str, subject: int, action: str, camera_id: str) -> str:
  return os.path.join(root, f"S{subject}", "StackedHourglass",
                      f"{action.replace(' ', '_')}.{camera_id}.h5")
