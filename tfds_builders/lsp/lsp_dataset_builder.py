"""LSP and LSP-extended as tfds array_record: one record per person (image-half schema).

Reads `joints.mat` and images from `manual_dir` (see MANUAL_DOWNLOAD_INSTRUCTIONS); the
14 LSP joints map onto H36M-17 with `skeleton.LSP_14_TO_H36M_17` (pelvis, spine and
Neck/Nose stay absent). UP-3D's UPi-S1H silhouettes are cropped alongside where that
folder is given. Missing or unreadable images are skipped, logged and listed in the
dataset's metadata; a missing annotation file or image folder stops the build, named.
"""

from __future__ import annotations

import os

from absl import logging
import tensorflow_datasets as tfds

from jpose.formats import image_files
from jpose.formats import image_records
from jpose.geometry import skeleton

LSP_TRAIN_IMAGES = 1000  # LSP's first 1,000 images train, the other 1,000 test.


class Builder(tfds.core.GeneratorBasedBuilder):
  """LSP (2,000 images) and LSP-extended (10,000), 14 joints, optional silhouettes."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: 256 px crops, H36M-17 joints, UPi-S1H silhouettes."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download LSP (sam.johnson.io/research/lsp.html, `lsp_dataset.zip`, or the original-size
  `lsp_dataset_original.zip`) and LSP-extended (`lspet_dataset.zip`); research use. Arrange
  `manual_dir` as (either dataset may be absent, not both):
    lsp/joints.mat     lsp/images/im0001.jpg ... im2000.jpg
    lspet/joints.mat   lspet/images/im00001.jpg ... im10000.jpg
  Optionally the UP-3D silhouettes (files.is.tuebingen.mpg.de/classner/up, `upi-s1h.zip`):
    upi-s1h/data/lsp/im0001_segmentation.png, upi-s1h/data/lsp_extended/im00001_segmentation.png
  (UPi-S1H matches the small `lsp_dataset` images; silhouettes whose size differs from
  their image are skipped and listed in metadata['mismatched_silhouettes']).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=image_records.features(with_silhouette=True),
        metadata=tfds.core.MetadataDict(),
        homepage="http://sam.johnson.io/research/lsp.html")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    parts = {}
    missing = []
    for name in ("lsp", "lspet"):
      folder = os.path.join(root, name)
      if not os.path.isdir(folder):
        missing.append(folder)
        continue
      images = os.path.join(folder, "images")
      if not os.path.isdir(images):
        raise image_files.ImageFileError(images, "directory not found")
      parts[name] = (image_files.read_lsp_joints(os.path.join(folder, "joints.mat")), images)
    if not parts:
      raise image_files.ImageFileError(
          root, "holds neither 'lsp/' nor 'lspet/' (each with joints.mat and images/)")
    for people, images in parts.values():
      missing += image_records.missing_images(people, images)
    for path in missing:
      logging.warning("lsp: source missing, skipped: %s", path)
    self.info.metadata["missing_files"] = missing
    silhouettes = os.path.join(root, "upi-s1h", "data")
    has_silhouettes = os.path.isdir(silhouettes)
    if not has_silhouettes:
      logging.info("lsp: no %s; records carry no silhouettes", silhouettes)

    def silhouette_path(subfolder):
      if not has_silhouettes:
        return lambda person: None
      return lambda person: os.path.join(
          silhouettes, subfolder, person.image.replace(".jpg", "_segmentation.png"))

    plans = {"train": [], "test": []}
    if "lsp" in parts:
      people, images = parts["lsp"]
      plans["train"].append(("lsp", people[:LSP_TRAIN_IMAGES], images, silhouette_path("lsp")))
      plans["test"].append(("lsp", people[LSP_TRAIN_IMAGES:], images, silhouette_path("lsp")))
    if "lspet" in parts:
      people, images = parts["lspet"]
      plans["train"].append(("lspet", people, images, silhouette_path("lsp_extended")))
    return {split: self._generate_examples(plan) for split, plan in plans.items() if plan}

  def _generate_examples(self, plan):
    for prefix, people, images, silhouette_path in plan:
      yield from image_records.examples_from_people(
          people, images, skeleton.LSP_14_TO_H36M_17, prefix, self.info.metadata,
          silhouette_path=silhouette_path)
