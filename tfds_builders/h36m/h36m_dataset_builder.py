"""Human3.6M as tfds array_record: one record per (subject, action, camera) sequence.

Reads the Martinez et al. 2017 layout from `manual_dir` (see MANUAL_DOWNLOAD_INSTRUCTIONS).
Every subject folder and every sequence's files must be there, except the six files that
the public release lacks (`h36m_files.KNOWN_ABSENT_*`): those are skipped, logged, and
listed in the dataset's metadata (`missing_files`, `missing_detections`). Anything else
missing, corrupt or misshapen stops the build with an error that names it, so an
incomplete folder is never cached as a finished dataset.
"""

from __future__ import annotations

import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds

from jpose.data import h36m_files
from jpose.data import records


class Builder(tfds.core.GeneratorBasedBuilder):
  """Human3.6M 3D poses, cameras and Stacked Hourglass detections (17 joints)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: 17 joints, GT and Stacked Hourglass 2D."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Human3.6M is licensed (http://vision.imar.ro/human3.6m, research use only); register
  there and accept the licence. Then get `h36m.zip` as released with Martinez et al. 2017
  ("A simple yet effective baseline for 3d human pose estimation", see the README of
  github.com/una-dinosauria/3d-pose-baseline) and unzip it. Point `manual_dir` at the
  folder that holds `cameras.h5` and `S1 ... S11/`, each with `MyPoses/3D_positions/*.h5`
  and `StackedHourglass/*.h5`.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=records.features(),
        metadata=tfds.core.MetadataDict(),
        homepage="http://vision.imar.ro/human3.6m",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    cameras = h36m_files.read_cameras(os.path.join(root, "cameras.h5"))
    plan, missing_files, missing_detections = self._plan(root)
    for path in missing_files:
      logging.warning("h36m: 3D file absent from the public release, sequence skipped: %s",
                      path)
    for path in missing_detections:
      logging.warning("h36m: detection file absent from the public release, pose_2d_sh is "
                      "NaN: %s", path)
    self.info.metadata["missing_files"] = missing_files
    self.info.metadata["missing_detections"] = missing_detections
    splits = {}
    for split, subjects in (("train", h36m_files.TRAIN_SUBJECTS),
                            ("test", h36m_files.TEST_SUBJECTS)):
      split_plan = [item for item in plan if item[0] in subjects]
      if split_plan:
        splits[split] = self._generate_examples(root, split_plan, cameras)
    if not splits:
      raise h36m_files.H36mFileError(root, "no subject folder (S1 ... S11) holds any 3D pose file")
    return splits

  def _plan(self, root: str):
    """Lists the (subject, action) pairs to build and the known-absent source files."""
    plan, missing_files, missing_detections = [], [], []
    for subject in h36m_files.SUBJECTS:
      folder = os.path.join(root, f"S{subject}")
      if not os.path.isdir(folder):
        raise h36m_files.H36mFileError(
            folder, "subject folder not found; Human3.6M needs all of "
            + ", ".join(f"S{s}" for s in h36m_files.SUBJECTS))
      for action in h36m_files.sequence_names(root, subject):
        path = h36m_files.positions_path(root, subject, action)
        if not os.path.exists(path):
          if (subject, action) not in h36m_files.KNOWN_ABSENT_POSITIONS:
            raise h36m_files.H36mFileError(path, "3D pose file not found (its detections "
                                           "are there, so the sequence exists)")
          missing_files.append(path)
          continue
        plan.append((subject, action))
        for camera_id in h36m_files.CAMERA_IDS:
          det = h36m_files.detections_path(root, subject, action, camera_id)
          if not os.path.exists(det):
            if (subject, action, camera_id) not in h36m_files.KNOWN_ABSENT_DETECTIONS:
              raise h36m_files.H36mFileError(det, "detection file not found")
            missing_detections.append(det)
    return plan, missing_files, missing_detections

  def _generate_examples(self, root, plan, cameras):
    for subject, action in plan:
      world = h36m_files.read_positions_3d(h36m_files.positions_path(root, subject, action))
      for camera_id in h36m_files.CAMERA_IDS:
        det_path = h36m_files.detections_path(root, subject, action, camera_id)
        if os.path.exists(det_path):
          detections = h36m_files.read_detections(det_path)
          if detections.shape[0] != world.shape[0]:
            raise h36m_files.H36mFileError(
                det_path, f"has {detections.shape[0]} frames but its 3D file has {world.shape[0]}")
        else:
          detections = np.full(world.shape[:2] + (2,), np.nan, np.float32)
        cam = cameras[(subject, camera_id)]
        yield f"S{subject}/{action}/{camera_id}", records.sequence_record(
            subject=f"S{subject}", action=action, camera_id=camera_id, fps=h36m_files.FPS,
            camera={n: getattr(cam, n) for n in ("R", "T", "f", "c", "k", "p")},
            pose_3d_world=world, pose_2d_sh=detections)
