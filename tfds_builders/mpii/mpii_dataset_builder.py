"""MPII Human Pose as tfds array_record: one record per annotated person.

Reads mmpose's JSON conversion of the MPII annotations (`mpii_train.json`,
`mpii_val.json`) and the images from `manual_dir`; the 16 MPII joints map onto H36M-17
with `skeleton.MPII_ANNOTATION_TO_H36M_17` (Sun et al.'s map: thorax from the upper neck,
head from the head top; Spine and Neck/Nose stay absent). Missing or unreadable images are skipped, logged and listed in the metadata.
"""

from __future__ import annotations

import os

from absl import logging
import tensorflow_datasets as tfds

from jpose.formats import image_files
from jpose.formats import image_records
from jpose.geometry import skeleton

SPLIT_FILES = {"train": "mpii_train.json", "validation": "mpii_val.json"}


class Builder(tfds.core.GeneratorBasedBuilder):
  """MPII Human Pose (about 25k people in train), 16 joints."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "First release: 256 px crops, H36M-17 joints.",
                   "1.1.0": "MPII's thorax no longer labels H36M's spine (issue 26): the "
                            "annotations' own map, skeleton.MPII_ANNOTATION_TO_H36M_17."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the MPII Human Pose images (human-pose.mpi-inf.mpg.de, `mpii_human_pose_v1.tar.gz`;
  BSD licence, research use) and mmpose's JSON annotations (`mpii_annotations.tar`, from the
  mmpose documentation's dataset page: mpii_train.json, mpii_val.json). Arrange `manual_dir` as
    annotations/mpii_train.json   (required)
    annotations/mpii_val.json     (optional; the validation split)
    images/*.jpg
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=image_records.features(),
        metadata=tfds.core.MetadataDict(), homepage="http://human-pose.mpi-inf.mpg.de")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    images = os.path.join(root, "images")
    if not os.path.isdir(images):
      raise image_files.ImageFileError(images, "directory not found")
    missing, plans = [], {}
    for split, filename in SPLIT_FILES.items():
      path = os.path.join(root, "annotations", filename)
      if split != "train" and not os.path.exists(path):
        missing.append(path)
        continue
      people = image_files.read_mpii_json(path)
      missing += image_records.missing_images(people, images)
      plans[split] = people
    for path in missing:
      logging.warning("mpii: source missing, skipped: %s", path)
    self.info.metadata["missing_files"] = missing
    return {split: self._generate_examples(people, images) for split, people in plans.items()}

  def _generate_examples(self, people, images):
    yield from image_records.examples_from_people(
        people, images, skeleton.MPII_ANNOTATION_TO_H36M_17, "mpii", self.info.metadata)
