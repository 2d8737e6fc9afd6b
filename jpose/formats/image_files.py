"""Readers for the 2D image datasets' annotation files (LSP, LSP-extended, MPII, COCO).

Every reader returns joints in continuous pixel coordinates (pixel (row i, col j) has its
centre at (j + 0.5, i + 0.5)), in its dataset's own joint layout; builders map them onto
H36M-17 with `skeleton.convert_joints`. The annotation files count pixels differently:
  LSP / LSP-extended `joints.mat`, MPII (`.mat` and mmpose's JSON conversion): MATLAB,
      1-based pixel centres, so continuous = value - 0.5;
  COCO `person_keypoints_*.json`: 0-based integer pixel indices, continuous = value + 0.5
      (detectron2 reads them the same way).
Every reader raises `ImageFileError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from jpose import file_errors

MATLAB_OFFSET = -0.5  # 1-based pixel centres -> continuous coordinates
COCO_OFFSET = 0.5  # 0-based pixel indices -> continuous coordinates


class ImageFileError(file_errors.SourceFileError):
  """An image or annotation file is missing, unreadable or holds malformed fields."""


@dataclasses.dataclass(frozen=True)
class Person:
  """One annotated person in its dataset's joint layout (J joints)."""

  image: str  # image path relative to the dataset's image folder
  person_id: str  # unique within the dataset (annotation id or index)
  joints: np.ndarray  # (J, 2) continuous pixels, NaN where not annotated
  visible: np.ndarray  # (J,) 1: annotated and usable
  occluded: np.ndarray  # (J,) 1: annotated but marked occluded


def load_image(path: str) -> Image.Image:
  """Opens and fully decodes an image (RGB or L); a missing or damaged file is named."""
  file_errors.require_file(path, ImageFileError)
  try:
    with Image.open(path) as image:
      image.load()
      return image.copy()
  except (OSError, SyntaxError, ValueError) as e:  # Pillow's errors for damaged files.
    raise ImageFileError(path, f"not a readable image (truncated or corrupt?): {e}") from e


def read_lsp_joints(path: str) -> list[Person]:
  """An LSP or LSP-extended `joints.mat` -> one Person per image (14 LSP joints).

  The two releases store their flags differently, and the array's shape tells which:
    LSP      `joints` (3, 14, N): x, y, and an OCCLUSION flag (1 = occluded); every joint
             is annotated, so all are visible (usable) and the flag goes to `occluded`.
    LSP-ext  `joints` (14, 3, N): x, y, and a VISIBILITY flag (1 = visible); a joint with
             flag 0 has no usable position (often 0 or negative) and becomes NaN.
  Image names are im0001.jpg (LSP, 4 digits) and im00001.jpg (LSP-extended, 5 digits).
  """
  import scipy.io  # only the LSP readers need scipy

  file_errors.require_file(path, ImageFileError)
  try:
    mat = scipy.io.loadmat(path)
  except (ValueError, OSError, TypeError) as e:
    raise ImageFileError(path, f"not a readable MATLAB file (truncated or corrupt?): {e}") from e
  if "joints" not in mat:
    raise ImageFileError(path, f"has no 'joints' array (it has {sorted(k for k in mat if not k.startswith('__'))})")
  raw = np.asarray(mat["joints"], np.float64)
  if raw.ndim == 3 and raw.shape[:2] == (3, 14):
    coords = raw[:2].transpose(2, 1, 0)  # (N, 14, 2)
    occluded = raw[2].T
    visible = np.ones_like(occluded)
    digits = 4
  elif raw.ndim == 3 and raw.shape[:2] == (14, 3):
    coords = raw[:, :2].transpose(2, 0, 1)
    visible = raw[:, 2].T
    occluded = np.zeros_like(visible)
    digits = 5
  else:
    raise ImageFileError(path, f"'joints' has shape {raw.shape}, expected (3, 14, N) (LSP) "
                         "or (14, 3, N) (LSP-extended)")
  flags = np.concatenate([occluded, visible])
  if not np.isin(flags, (0.0, 1.0)).all():
    raise ImageFileError(path, "'joints' third row holds values other than 0 and 1")
  joints = np.where(visible[..., None] > 0, coords + MATLAB_OFFSET, np.nan)
  return [Person(image=f"im{i + 1:0{digits}d}.jpg", person_id=str(i + 1),
                 joints=joints[i].astype(np.float32), visible=visible[i].astype(np.float32),
                 occluded=occluded[i].astype(np.float32))
          for i in range(raw.shape[2])]


def read_mpii_json(path: str) -> list[Person]:
  """mmpose's MPII JSON (a list of {image, joints (16, 2), joints_vis (16,)}) -> Persons.

  The coordinates are the official release's 1-based MATLAB values; joints with
  joints_vis 0 are not annotated and become NaN.
  """
  entries = file_errors.read_json(path, ImageFileError)
  if not isinstance(entries, list):
    raise ImageFileError(path, "expected a list of person entries (mmpose's MPII JSON)")
  people = []
  for i, entry in enumerate(entries):
    for key in ("image", "joints", "joints_vis"):
      if key not in entry:
        raise ImageFileError(path, f"entry {i} has no '{key}' field")
    joints = np.asarray(entry["joints"], np.float64)
    vis = np.asarray(entry["joints_vis"], np.float64)
    if joints.shape != (16, 2) or vis.shape != (16,):
      raise ImageFileError(path, f"entry {i} ('{entry['image']}'): joints {joints.shape} / "
                           f"joints_vis {vis.shape}, expected (16, 2) / (16,)")
    visible = (vis > 0).astype(np.float32)
    people.append(Person(
        image=entry["image"], person_id=str(i),
        joints=np.where(visible[:, None] > 0, joints + MATLAB_OFFSET, np.nan).astype(np.float32),
        visible=visible, occluded=np.zeros(16, np.float32)))
  return people


def read_coco_keypoints(path: str, min_keypoints: int = 1) -> list[Person]:
  """A COCO `person_keypoints_*.json` -> Persons (17 COCO joints).

  Keeps non-crowd person annotations with at least `min_keypoints` labelled joints.
  COCO's v = 0 is unlabelled (NaN), v = 1 labelled but not visible (occluded), v = 2
  labelled and visible.
  """
  data = file_errors.read_json(path, ImageFileError)
  for key in ("images", "annotations"):
    if key not in data:
      raise ImageFileError(path, f"has no '{key}' field")
  file_names = {}
  for image in data["images"]:
    if "id" not in image or "file_name" not in image:
      raise ImageFileError(path, f"an 'images' entry lacks 'id' or 'file_name': {image}")
    file_names[image["id"]] = image["file_name"]
  people = []
  for ann in data["annotations"]:
    if ann.get("category_id", 1) != 1 or ann.get("iscrowd", 0):
      continue
    if "keypoints" not in ann or "image_id" not in ann:
      raise ImageFileError(path, f"annotation {ann.get('id')} lacks 'keypoints' or 'image_id'")
    keypoints = np.asarray(ann["keypoints"], np.float64)
    if keypoints.shape != (51,):
      raise ImageFileError(path, f"annotation {ann.get('id')}: 'keypoints' has "
                           f"{keypoints.size} values, expected 51 (17 x (x, y, v))")
    if ann["image_id"] not in file_names:
      raise ImageFileError(path, f"annotation {ann.get('id')} names image_id "
                           f"{ann['image_id']}, which 'images' does not list")
    keypoints = keypoints.reshape(17, 3)
    labelled = keypoints[:, 2] > 0
    if labelled.sum() < min_keypoints:
      continue
    people.append(Person(
        image=file_names[ann["image_id"]], person_id=str(ann.get("id")),
        joints=np.where(labelled[:, None], keypoints[:, :2] + COCO_OFFSET, np.nan).astype(np.float32),
        visible=labelled.astype(np.float32),
        occluded=(keypoints[:, 2] == 1).astype(np.float32)))
  return people
