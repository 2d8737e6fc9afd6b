"""COCO person keypoints as tfds array_record: one record per annotated person.

Reads `annotations/person_keypoints_{train,val}2017.json` and the images from
`manual_dir`; the 17 COCO joints map onto H36M-17 with `skeleton.COCO_17_TO_H36M_17`
(pelvis, spine, thorax and head top stay absent; the nose stands in for Neck/Nose).
Crowd annotations and people with fewer than MIN_KEYPOINTS labelled joints are left
out. Missing or unreadable images are skipped, logged and listed in the metadata.
"""

from __future__ import annotations

import os

from absl import logging
import tensorflow_datasets as tfds

from jpose.formats import image_files
from jpose.formats import image_records
from jpose.geometry import skeleton

SPLITS = {"train": "train2017", "validation": "val2017"}
MIN_KEYPOINTS = 6  # fewer labelled COCO joints rarely frame a body worth a crop


class Builder(tfds.core.GeneratorBasedBuilder):
  """COCO 2017 person keypoints, 17 joints."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: 256 px crops, H36M-17 joints."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download COCO 2017 (cocodataset.org: train2017.zip, val2017.zip and
  annotations_trainval2017.zip; CC BY 4.0 annotations, Flickr image terms). Arrange
  `manual_dir` as (either split may be absent, not both):
    annotations/person_keypoints_train2017.json   train2017/*.jpg
    annotations/person_keypoints_val2017.json     val2017/*.jpg
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=image_records.features(),
        metadata=tfds.core.MetadataDict(), homepage="https://cocodataset.org")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    missing, plans = [], {}
    for split, folder in SPLITS.items():
      annotations = os.path.join(root, "annotations", f"person_keypoints_{folder}.json")
      if not os.path.exists(annotations):
        missing.append(annotations)
        continue
      images = os.path.join(root, folder)
      if not os.path.isdir(images):
        raise image_files.ImageFileError(images, f"directory not found (images of {annotations})")
      people = image_files.read_coco_keypoints(annotations, min_keypoints=MIN_KEYPOINTS)
      missing += image_records.missing_images(people, images)
      plans[split] = (people, images)
    if not plans:
      raise image_files.ImageFileError(
          os.path.join(root, "annotations"), "holds no person_keypoints_{train,val}2017.json")
    for path in missing:
      logging.warning("coco_keypoints: source missing, skipped: %s", path)
    self.info.metadata["missing_files"] = missing
    return {split: self._generate_examples(*plan) for split, plan in plans.items()}

  def _generate_examples(self, people, images):
    yield from image_records.examples_from_people(
        people, images, skeleton.COCO_17_TO_H36M_17, "coco", self.info.metadata)
