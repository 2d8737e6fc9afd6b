"""The per-person image record shared by every image tfds builder (LSP, MPII, COCO, H36M).

One record is one person: a square JPEG crop around the annotated joints and its labels in
the image-half conventions (pixel centres at +0.5, H36M-17 joints, crop affine from
original pixels to crop pixels). Builders fill it with `person_record`, so the box, the
crop and the joint transform are computed in one place for every dataset.
"""

from __future__ import annotations

import io
import os
from typing import Iterator, Sequence

from absl import logging
import numpy as np
from PIL import Image
import simplejpeg
import tensorflow_datasets as tfds

from jpose.formats import image_files
from jpose.geometry import affine as affine_lib
from jpose.geometry import skeleton

NUM_JOINTS = 17
CROP_SIZE = 256  # stored crop side, pixels
# The box side is the joints' larger extent times (1 + 2 * BOX_MARGIN): room for the
# body outline around the joints and for on-device scale/translation augmentation.
BOX_MARGIN = 0.25
MIN_BOX_SIDE = 32  # original pixels; a box around one or two joints is still a body part.
JPEG_QUALITY = 90
# A person with fewer usable H36M-17 joints gives no usable crop (e.g. a COCO face only).
MIN_VISIBLE_JOINTS = 4


def features(with_silhouette: bool = False) -> tfds.features.FeaturesDict:
  """The record schema; `with_silhouette` adds the UP-3D silhouette crop (LSP only)."""
  tensor = lambda *s: tfds.features.Tensor(shape=s, dtype=np.float32)
  spec = {
      "image": tfds.features.Tensor(shape=(), dtype=np.object_),  # JPEG bytes, (S, S, 3)
      "image_id": tfds.features.Text(),  # source image (and person), e.g. 'lspet/im00001.jpg'
      "image_size": tensor(2),  # original (width, height), pixels
      "joints_2d": tensor(NUM_JOINTS, 2),  # crop pixels; NaN where not annotated
      "visible": tensor(NUM_JOINTS),  # 1: annotated and usable
      "occluded": tensor(NUM_JOINTS),  # 1: annotated but marked occluded by the dataset
      "crop": tensor(2, 3),  # original pixels -> crop pixels
      "has_3d": np.float32,
      "pose_3d": tensor(NUM_JOINTS, 3),  # camera frame, root-relative, mm; 0 if unknown
      "root_depth": np.float32,  # mm; 0 if unknown
      "camera_f": tensor(2),  # original intrinsics, pixels; 0 if unknown
      "camera_c": tensor(2),
  }
  if with_silhouette:
    spec["silhouette"] = tfds.features.Tensor(shape=(), dtype=np.object_)  # PNG, b'' if none
    spec["has_silhouette"] = np.float32
  return tfds.features.FeaturesDict(spec)


def square_box(joints: np.ndarray, margin: float = BOX_MARGIN,
               min_side: float = MIN_BOX_SIDE) -> tuple[int, int, int]:
  """(J, 2) joints (NaN = absent) -> integer square box (x0, y0, side) in original pixels.

  Integer corners keep the crop an exact pixel window (no resampling shift), so the
  only resampling is the resize from `side` to the crop size.
  """
  present = np.isfinite(joints).all(axis=-1)
  if not present.any():
    raise ValueError("square_box: no annotated joint to put a box around")
  lo = joints[present].min(axis=0)
  hi = joints[present].max(axis=0)
  side = max(float((hi - lo).max()) * (1.0 + 2.0 * margin), min_side)
  side = int(np.ceil(side))
  centre = (lo + hi) / 2.0
  x0, y0 = (int(np.floor(v - side / 2.0)) for v in centre)
  return x0, y0, side


def crop_affine(box: tuple[int, int, int], size: int) -> np.ndarray:
  """The (2, 3) affine taking original pixels to crop pixels for a square box."""
  x0, y0, side = box
  s = size / side
  return np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]], np.float32)


def crop_image(image: Image.Image, box: tuple[int, int, int], size: int,
               resample=Image.Resampling.BILINEAR) -> Image.Image:
  """The box of `image`, zero-padded where it leaves the image, resized to size x size.

  Pillow's resize maps pixel centres to pixel centres and low-pass filters when it
  shrinks, which is exactly the box -> crop affine of `crop_affine`.
  """
  x0, y0, side = box
  window = image.crop((x0, y0, x0 + side, y0 + side))
  return window.resize((size, size), resample)


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
  return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=quality, colorspace="RGB")


def encode_png(gray: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(gray).save(buffer, format="PNG")
  return buffer.getvalue()


def person_record(*, image: Image.Image, image_id: str, joints_2d: np.ndarray,
                  visible: np.ndarray, occluded: np.ndarray | None = None,
                  pose_3d: np.ndarray | None = None, root_depth: float = 0.0,
                  camera_f: np.ndarray | None = None, camera_c: np.ndarray | None = None,
                  silhouette: Image.Image | None = None, with_silhouette: bool = False,
                  size: int = CROP_SIZE) -> dict:
  """One record from an RGB image and its person's H36M-17 joints in original pixels.

  joints_2d (17, 2) continuous pixel coordinates (NaN where absent); visible, occluded
  (17,) in {0, 1}; pose_3d (17, 3) root-relative camera-frame mm where known. The box is
  taken around the visible joints.
  """
  joints_2d = np.asarray(joints_2d, np.float32)
  visible = np.asarray(visible, np.float32)
  if joints_2d.shape != (NUM_JOINTS, 2) or visible.shape != (NUM_JOINTS,):
    raise ValueError(f"{image_id}: joints_2d {joints_2d.shape} / visible {visible.shape}, "
                     f"expected ({NUM_JOINTS}, 2) / ({NUM_JOINTS},)")
  usable = (visible > 0) & np.isfinite(joints_2d).all(axis=-1)
  box = square_box(np.where(usable[:, None], joints_2d, np.nan))
  affine = crop_affine(box, size)
  crop = np.asarray(crop_image(image.convert("RGB"), box, size))
  record = {
      "image": encode_jpeg(crop),
      "image_id": image_id,
      "image_size": np.array(image.size, np.float32),
      "joints_2d": np.where(usable[:, None], affine_lib.apply_affine(affine, joints_2d),
                            np.nan).astype(np.float32),
      "visible": usable.astype(np.float32),
      "occluded": (np.zeros(NUM_JOINTS, np.float32) if occluded is None
                   else np.asarray(occluded, np.float32) * usable),
      "crop": affine,
      "has_3d": np.float32(pose_3d is not None),
      "pose_3d": (np.zeros((NUM_JOINTS, 3), np.float32) if pose_3d is None
                  else np.asarray(pose_3d, np.float32)),
      "root_depth": np.float32(root_depth),
      "camera_f": np.zeros(2, np.float32) if camera_f is None else np.asarray(camera_f, np.float32),
      "camera_c": np.zeros(2, np.float32) if camera_c is None else np.asarray(camera_c, np.float32),
  }
  if with_silhouette:
    if silhouette is None:
      record["silhouette"], record["has_silhouette"] = b"", np.float32(0)
    else:
      # UP-3D silhouettes mark the person with any non-zero value. Bilinear then
      # threshold gives a cleaner edge than nearest-neighbour when shrinking.
      binary = Image.fromarray(((np.asarray(silhouette.convert("L")) > 0) * 255).astype(np.uint8))
      mask = np.asarray(crop_image(binary, box, size)) >= 128
      record["silhouette"] = encode_png((mask * 255).astype(np.uint8))
      record["has_silhouette"] = np.float32(1)
  return record


def to_h36m(person: image_files.Person, joint_map: Sequence[int]):
  """A Person's joints, visible and occluded flags in H36M-17 order (absent: NaN, 0, 0)."""
  joints = skeleton.convert_joints(person.joints, tuple(joint_map))
  flags = skeleton.convert_joints(np.stack([person.visible, person.occluded], -1),
                                  tuple(joint_map))
  flags = np.nan_to_num(flags)
  return joints, flags[:, 0], flags[:, 1]


def missing_images(people: Sequence[image_files.Person], image_dir: str) -> list[str]:
  """The image paths that people refer to and that do not exist, sorted, once each."""
  paths = {os.path.join(image_dir, p.image) for p in people}
  return sorted(p for p in paths if not os.path.exists(p))


def examples_from_people(people: Sequence[image_files.Person], image_dir: str,
                         joint_map: Sequence[int], prefix: str, metadata: dict,
                         silhouette_path=None) -> Iterator[tuple[str, dict]]:
  """(key, record) for each person whose image exists and decodes.

  Unreadable images go to metadata['unreadable_files'] and people with fewer than
  MIN_VISIBLE_JOINTS usable joints are counted in metadata['too_few_joints'];
  `silhouette_path(person)` (optional) names a silhouette image that may be absent.
  """
  metadata.setdefault("unreadable_files", [])
  metadata.setdefault("too_few_joints", 0)
  for person in people:
    path = os.path.join(image_dir, person.image)
    if not os.path.exists(path):
      continue  # listed in metadata['missing_files'] by the builder's split planning
    joints, visible, occluded = to_h36m(person, joint_map)
    usable = visible * np.isfinite(joints).all(-1)
    if usable.sum() < MIN_VISIBLE_JOINTS:
      metadata["too_few_joints"] += 1
      continue
    try:
      image = image_files.load_image(path)
    except image_files.ImageFileError as e:
      logging.warning("%s: image skipped: %s", prefix, e)
      metadata["unreadable_files"].append(path)
      continue
    silhouette = None
    if silhouette_path is not None:
      sil_path = silhouette_path(person)
      if sil_path and os.path.exists(sil_path):
        try:
          silhouette = image_files.load_image(sil_path)
        except image_files.ImageFileError as e:
          logging.warning("%s: silhouette skipped: %s", prefix, e)
          metadata["unreadable_files"].append(sil_path)
        if silhouette is not None and silhouette.size != image.size:
          metadata.setdefault("mismatched_silhouettes", []).append(sil_path)
          silhouette = None
    image_id = f"{prefix}/{person.image}#{person.person_id}"
    yield image_id, person_record(
        image=image, image_id=image_id, joints_2d=joints, visible=visible, occluded=occluded,
        silhouette=silhouette, with_silhouette=silhouette_path is not None)
