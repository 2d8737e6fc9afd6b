"""Paths and 3D pose readers for Human3.6M's official video layout.

  S{S}/Videos/<Action>.<camera id>.mp4                  50 fps, 1000 x 1002 (one camera 1000 x 1000)
  S{S}/MyPoseFeatures/D3_Positions/<Action>.cdf         'Pose' (1, T, 96), world mm (official)
  S{S}/MyPoses/3D_positions/<Action>.h5                 the same poses as released with
                                                        Martinez et al. (`h36m_files`)
Cameras come from `cameras.h5` (`h36m_files.read_cameras`), the calibration the `h36m`
dataset uses. Readers raise `h36m_files.H36mFileError` naming the file. `frame_id` and
`parse_frame_id` write and read the `h36m_images` record ids.
"""

from __future__ import annotations

import os
import re

import numpy as np

from jpose import file_errors
from jpose.formats import h36m_files
from jpose.geometry import skeleton


# The official release names S1's 'Photo' and 'WalkDog' trials 'TakingPhoto' and
# 'WalkingDog' (its .cdf poses and videos alike); the h5 release, and so the `h36m`
# dataset, use the short names everywhere.
OFFICIAL_ACTION_NAMES = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}
_OFFICIAL_BY_SHORT_NAME = {v: k for k, v in OFFICIAL_ACTION_NAMES.items()}


def _renamed(action: str, names: dict[str, str]) -> str:
  """'TakingPhoto 1' -> 'Photo 1' with OFFICIAL_ACTION_NAMES: the name before the trial
  number looked up in `names`, the trial kept; other actions unchanged."""
  name, space, trial = action.partition(" ")
  return names.get(name, name) + space + trial


def video_path(root: str, subject: int, action: str, camera_id: str) -> str:
  """S{subject}/Videos/<action>.<camera>.mp4; where that is absent and `action` is one of
  the h5 release's short names ('Photo 1'), the official release's video of it
  ('TakingPhoto 1') if that exists."""
  videos = os.path.join(root, f"S{subject}", "Videos")
  path = os.path.join(videos, f"{action}.{camera_id}.mp4")
  official = _renamed(action, _OFFICIAL_BY_SHORT_NAME)
  if official != action and not os.path.exists(path):
    alias = os.path.join(videos, f"{official}.{camera_id}.mp4")
    if os.path.exists(alias):
      return alias
  return path


def video_sequence(path: str) -> str | None:
  """A `video_path` (or a note that starts with one) -> its sequence key in the `h36m`
  dataset's naming, 'S11/Directions/54138969'; None for other paths."""
  match = re.search(r"(?:^|/)(S\d+)/Videos/([^/]+)\.(\d+)\.mp4(?::|$)", path)
  if not match:
    return None
  return f"{match.group(1)}/{_renamed(match.group(2), OFFICIAL_ACTION_NAMES)}/{match.group(3)}"


def cdf_dir(root: str, subject: int) -> str:
  return os.path.join(root, f"S{subject}", "MyPoseFeatures", "D3_Positions")


def h5_dir(root: str, subject: int) -> str:
  return os.path.dirname(h36m_files.positions_path(root, subject, "x"))


def pose_files(root: str, subject: int) -> dict[str, str]:
  """{action: 3D pose file} for one subject: Martinez h5 files where that folder exists,
  else the official D3_Positions .cdf files; {} if the subject has neither."""
  for directory, ext in ((h5_dir(root, subject), ".h5"), (cdf_dir(root, subject), ".cdf")):
    if os.path.isdir(directory):
      return {name[:-len(ext)]: os.path.join(directory, name)
              for name in sorted(os.listdir(directory)) if name.endswith(ext)}
  return {}


def read_positions_cdf(path: str) -> np.ndarray:
  """An official D3_Positions .cdf -> (T, 17, 3) world-frame joints in mm."""
  try:
    import cdflib  # an optional dependency: only the official .cdf layout needs it
  except ImportError as e:
    raise h36m_files.H36mFileError(path, "reading .cdf files needs `pip install cdflib`") from e
  file_errors.require_file(path, h36m_files.H36mFileError)
  try:
    raw = np.asarray(cdflib.CDF(path).varget("Pose"))
  except Exception as e:  # cdflib raises many types on damaged files.
    raise h36m_files.H36mFileError(path, f"no readable 'Pose' variable (corrupt?): {e}") from e
  raw = raw.reshape(-1, raw.shape[-1]) if raw.ndim == 3 and raw.shape[0] == 1 else raw
  if raw.ndim != 2 or raw.shape[1] != 96 or raw.shape[0] == 0:
    raise h36m_files.H36mFileError(path, f"'Pose' has shape {raw.shape}, expected (1, T, 96)")
  if not np.all(np.isfinite(raw)):
    raise h36m_files.H36mFileError(path, "'Pose' contains NaN or infinite values")
  return raw.reshape(-1, 32, 3)[:, skeleton.H36M_17_FROM_32].astype(np.float32)


def read_positions(path: str) -> np.ndarray:
  """A Martinez .h5 or official .cdf pose file -> (T, 17, 3) world mm."""
  if path.endswith(".cdf"):
    return read_positions_cdf(path)
  return h36m_files.read_positions_3d(path)


def frame_id(subject: int, action: str, camera_id: str, frame: int) -> str:
  """An `h36m_images` record id: 'S9/Walking 1/54138969/000064' (frame 64 of the video)."""
  return f"S{subject}/{action}/{camera_id}/{frame:06d}"


def parse_frame_id(image_id: str) -> tuple[str, str, str, int]:
  """A `frame_id` -> (subject 'S9', action 'Walking 1', camera '54138969', frame 64), with
  the action in the `h36m` dataset's naming ('TakingPhoto 1' -> 'Photo 1'). Raises
  ValueError for an id of another layout."""
  parts = image_id.split("/")
  if (len(parts) != 4 or not re.fullmatch(r"S\d+", parts[0]) or not parts[1]
      or not parts[3].isdigit()):
    raise ValueError(f"record id {image_id!r} is not an h36m_images frame id "
                     "'S<subject>/<action>/<camera>/<frame>'")
  return parts[0], _renamed(parts[1], OFFICIAL_ACTION_NAMES), parts[2], int(parts[3])
