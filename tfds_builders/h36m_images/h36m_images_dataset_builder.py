"""Human3.6M video frames as tfds array_record: one person crop per (frame, camera).

Decodes the official `S*/Videos/<Action>.<camera>.mp4` with PyAV every `stride`-th frame
and pairs each frame with its 3D pose (Martinez h5 or official D3_Positions .cdf) and
the `cameras.h5` calibration of the `h36m` dataset. joints_2d and the crop box around
them come from the pinhole projection of the 17 joints, without lens distortion (Sun et
al.'s `CamProj` labels the same way), so that `heatmap.crop_to_camera`, a pinhole,
lifts the labels back to the 3D exactly. The frames themselves are distorted: a label
lies a mean 2-3 px (max 16 px on S9 Walking) of the original 1000 px frame from where the
distorted image shows the joint. (`h36m`'s pose_2d_gt keeps the distortion.) Missing
videos or pose files are skipped, logged and listed in the dataset's metadata.
"""

from __future__ import annotations

import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jpose.formats import h36m_files
from jpose.formats import h36m_video_files
from jpose.formats import image_records
from jpose.formats import records
from jpose.formats import video
from jpose.geometry import skeleton


def pinhole_projection(pose_cam: np.ndarray, focal: np.ndarray, principal: np.ndarray
                       ) -> np.ndarray:
  """(..., 3) camera-frame mm -> (..., 2) pixels through the undistorted pinhole (float64
  arithmetic, float32 out): the inverse of `heatmap.crop_to_camera`'s lift."""
  points = np.asarray(pose_cam, np.float64)
  xy = points[..., :2] / points[..., 2:3] * np.asarray(focal, np.float64)
  return (xy + np.asarray(principal, np.float64)).astype(np.float32)


@dataclasses.dataclass
class H36mImagesConfig(tfds.core.BuilderConfig):
  stride: int = 5  # keep every stride-th video frame
  subjects: tuple[int, ...] = h36m_files.SUBJECTS


class Builder(tfds.core.GeneratorBasedBuilder):
  """Human3.6M person crops with 3D poses, root depth and intrinsics."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "First release: 256 px crops, H36M-17 joints, 3D, cameras.",
                   "1.1.0": "joints_2d from the undistorted (pinhole) projection, which "
                            "crop_to_camera inverts exactly (issue 26)."}
  BUILDER_CONFIGS = [
      H36mImagesConfig(name="stride5", description="Every 5th frame (10 fps), all subjects: training.",
                       stride=5),
      H36mImagesConfig(name="quick", description="Every 64th frame of S9 and S11: quick tests.",
                       stride=64, subjects=h36m_files.TEST_SUBJECTS),
      H36mImagesConfig(name="stride1", description="Every frame, all subjects: two-stage models.",
                       stride=1),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Human3.6M is licensed (http://vision.imar.ro/human3.6m, research use only). Download the
  videos (`Videos` per subject) and either the official `D3_Positions` poses (needs
  `pip install cdflib`) or Martinez et al.'s `h36m.zip` (which also holds `cameras.h5`).
  Arrange `manual_dir` as
    cameras.h5
    S{1,5,6,7,8,9,11}/Videos/<Action>.<camera id>.mp4
    S{...}/MyPoses/3D_positions/<Action>.h5   or   S{...}/MyPoseFeatures/D3_Positions/<Action>.cdf
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=image_records.features(),
        metadata=tfds.core.MetadataDict(), homepage="http://vision.imar.ro/human3.6m")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    cameras = h36m_files.read_cameras(os.path.join(root, "cameras.h5"))
    plan, missing = [], []
    for subject in self.builder_config.subjects:
      poses = h36m_video_files.pose_files(root, subject)
      if not poses:
        missing.append(h36m_video_files.h5_dir(root, subject))
        continue
      for action, pose_path in poses.items():
        for camera_id in h36m_files.CAMERA_IDS:
          path = h36m_video_files.video_path(root, subject, action, camera_id)
          if os.path.exists(path):
            plan.append((subject, action, camera_id, pose_path, path))
          else:
            missing.append(path)
    for path in missing:
      logging.warning("h36m_images: source missing, skipped: %s", path)
    self.info.metadata["missing_files"] = missing
    splits = {}
    for split, subjects in (("train", h36m_files.TRAIN_SUBJECTS),
                            ("test", h36m_files.TEST_SUBJECTS)):
      split_plan = [item for item in plan if item[0] in subjects]
      if split_plan:
        splits[split] = self._generate_examples(split_plan, cameras)
    if not splits:
      raise h36m_files.H36mFileError(root, "no subject folder holds both a 3D pose file and its video")
    return splits

  def _generate_examples(self, plan, cameras):
    metadata = self.info.metadata
    metadata.setdefault("unreadable_files", [])
    metadata.setdefault("short_videos", [])
    stride = self.builder_config.stride
    for subject, action, camera_id, pose_path, path in plan:
      cam = cameras[(subject, camera_id)]
      sequence = records.sequence_record(
          subject=f"S{subject}", action=action, camera_id=camera_id, fps=h36m_files.FPS,
          camera={n: getattr(cam, n) for n in ("R", "T", "f", "c", "k", "p")},
          pose_3d_world=h36m_video_files.read_positions(pose_path),
          pose_2d_sh=np.zeros((0, 17, 2), np.float32))
      pose_cam = sequence["pose_3d"]
      pose_2d = pinhole_projection(pose_cam, cam.f, cam.c)
      wanted = range(0, pose_cam.shape[0], stride)
      last = -1
      try:
        for t, frame in video.read_frames(path, wanted):
          last = t
          root = pose_cam[t, skeleton.ROOT]
          image_id = h36m_video_files.frame_id(subject, action, camera_id, t)
          yield image_id, image_records.person_record(
              image=Image.fromarray(frame), image_id=image_id, joints_2d=pose_2d[t],
              visible=np.ones(17, np.float32), pose_3d=pose_cam[t] - root,
              root_depth=float(root[2]), camera_f=cam.f, camera_c=cam.c)
      except video.VideoFileError as e:
        logging.warning("h36m_images: video skipped from frame %d: %s", last + 1, e)
        metadata["unreadable_files"].append(path)
        continue
      if last < wanted[-1]:
        note = f"{path}: video ends before pose frame {wanted[-1]} of {pose_cam.shape[0]}"
        logging.warning("h36m_images: %s", note)
        metadata["short_videos"].append(note)
