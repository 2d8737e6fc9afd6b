"""Readers of users' 2D keypoint files (what 2D detectors write) into one COCO-17 track.

`read_keypoints` takes COCO results or annotation JSON, OpenPose JSON (a file or a folder
of them) or numpy arrays; jpose lifts one person, so it picks one per frame.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from jpose import file_errors
from jpose.geometry import skeleton

NUM_JOINTS = skeleton.COCO_17.num_joints
FRAMES = ("sequence", "images")
PERSON = ("track", "highest_score")
_COCO_LAYOUT = "(T, 17, 2) or (T, 17, 3): T frames of the 17 COCO joints (x, y[, score])"
# A "sequence" whose frame numbers are mostly gaps is almost surely separate images (COCO
# image ids); inserting the gaps would make a track of nothing but NaN.
_MIN_PRESENT_FRACTION = 0.1


class KeypointFileError(file_errors.SourceFileError):
  """A keypoint file is unreadable, of an unknown format, or holds malformed entries."""


@dataclasses.dataclass
class KeypointTrack:
  """One person's 2D keypoints over the frames of a file, in COCO-17 order."""

  points: np.ndarray  # (T, 17, 2) float32 pixels, NaN where the file has no joint.
  scores: np.ndarray  # (T, 17) float32 confidences; 0 where absent.
  frame_ids: list  # T entries: the file's frame number / image_id, or file name.
  image_size: tuple[int, int] | None  # (width, height) when the file states it.
  people: np.ndarray  # (T,) int32: people in the file's frame (0: a missing frame).
  source: str  # the path read.


@dataclasses.dataclass
class _Frame:
  """Everyone a file has in one frame: P candidates."""

  frame_id: object
  points: np.ndarray  # (P, 17, 2), NaN where absent.
  scores: np.ndarray  # (P, 17), 0 where absent.
  person_scores: np.ndarray  # (P,), NaN where the file gives none.


def read_keypoints(path: str, frames: str = "sequence", person: str = "track"
                   ) -> KeypointTrack:
  """Reads one person's COCO-17 keypoints from a detector's output.

  Formats, told apart by extension and content:
    - COCO keypoint results (mmpose, Detectron2, YOLO-pose, rtmlib): a JSON list of
      {"image_id", "keypoints": [x, y, score] * 17, "score"?}; several entries with one
      image_id are several people.
    - COCO annotations: a JSON dict with "images" and "annotations"; labelled joints
      (v > 0) score 1, unlabelled ones are absent; crowd and empty annotations are
      skipped. Frames are the "images" list in its order, whatever `frames` says.
    - OpenPose JSON, BODY_25 or COCO-18: a folder of `*_keypoints.json` files (ordered
      by the frame number that ends the name) or one such file; (0, 0, 0) is absent.
    - numpy: `.npy` (T, 17, 2) (scores 1) or (T, 17, 3) (x, y, score); `.npz` with
      `keypoints` of those shapes, optional `scores` (T, 17) and `image_size` (2,).
      NaN is absent.

  frames: "sequence" reads integer frame ids as frame numbers of one video and inserts
    each gap as missing frames (all NaN, people 0); "images" keeps only the frames
    present. Either way frames come in sorted order (ids that are not integers in
    natural order: "f2.jpg" before "f10.jpg").
  person: jpose lifts one person. "track" starts from the highest-scoring person (the
    entry's score, else its mean joint score) in the first frame with anyone, then
    follows whoever is nearest the last chosen person (mean distance over the joints
    both have; ties and no joint in common go to the higher score). "highest_score"
    takes each frame's highest-scoring person.

  Raises FileNotFoundError for a missing path and KeypointFileError (a ValueError that
  names the file, entry and field) for anything malformed.
  """
  if frames not in FRAMES:
    raise ValueError(f"frames={frames!r}: expected one of {FRAMES}")
  if person not in PERSON:
    raise ValueError(f"person={person!r}: expected one of {PERSON}")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: keypoint file or folder not found")
  image_size = None
  in_file_order = False
  if os.path.isdir(path):
    file_frames = _read_openpose_folder(path)
  else:
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
      file_frames, image_size = _read_npy(path), None
    elif extension == ".npz":
      file_frames, image_size = _read_npz(path)
    elif extension == ".json":
      content = file_errors.read_json(path, KeypointFileError)
      if isinstance(content, list):
        file_frames = _read_coco_results(path, content)
      elif isinstance(content, dict) and "images" in content and "annotations" in content:
        file_frames, image_size = _read_coco_annotations(path, content)
        in_file_order = True
      elif isinstance(content, dict) and "people" in content:
        file_frames = [_read_openpose_file(path, content)]
      else:
        raise KeypointFileError(
            path, "JSON of no known keypoint format: expected a list of COCO keypoint "
            "results, a COCO annotation dict with 'images' and 'annotations', or an "
            "OpenPose dict with 'people'")
    else:
      raise KeypointFileError(
          path, f"unknown extension '{extension}': expected .json (COCO or OpenPose), "
          ".npy or .npz, or a folder of OpenPose *_keypoints.json files")
  if not file_frames:
    raise KeypointFileError(path, "holds no frames")
  if not in_file_order:
    file_frames = _order(path, file_frames, frames)
  return _to_track(path, file_frames, person, image_size)


def drop_low_confidence(track: KeypointTrack, threshold: float) -> KeypointTrack:
  """Points scoring under `threshold` become NaN; their scores are kept."""
  low = track.scores < threshold
  points = np.where(low[..., None], np.nan, track.points).astype(np.float32)
  return dataclasses.replace(track, points=points)


def fill_missing(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(T, J, 2) points with NaN -> (filled (T, J, 2), was_missing (T, J) bool).

  Each joint is interpolated linearly over time between its nearest present frames
  before and after; before its first and after its last present frame it holds that
  value. A joint never present stays NaN (and counts as missing).
  """
  points = np.asarray(points)
  was_missing = np.isnan(points).any(axis=-1)
  filled = np.array(points, copy=True)
  filled[was_missing] = np.nan
  time = np.arange(points.shape[0])
  for joint in range(points.shape[1]):
    present = ~was_missing[:, joint]
    if present.any() and not present.all():
      for axis in range(points.shape[2]):
        filled[:, joint, axis] = np.interp(time, time[present], points[present, joint, axis])
  return filled, was_missing


def _triplets(path: str, where: str, values, num_joints: int) -> np.ndarray:
  """A flat [x, y, c] * num_joints list -> (num_joints, 3) float64, checked."""
  if not isinstance(values, list) or len(values) != 3 * num_joints:
    count = f"{len(values)} numbers" if isinstance(values, list) else type(values).__name__
    raise KeypointFileError(path, f"{where} has {count}, expected {3 * num_joints} "
                            f"({num_joints} joints x (x, y, score))")
  try:
    return np.asarray(values, dtype=np.float64).reshape(num_joints, 3)
  except (TypeError, ValueError) as e:
    raise KeypointFileError(path, f"{where} holds something other than numbers") from e


def _person(triplets: np.ndarray, absent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(17, 3) x, y, score and a (17,) absent mask -> (17, 2) points, (17,) scores."""
  absent = absent | ~np.isfinite(triplets).all(axis=-1)
  points = np.where(absent[:, None], np.nan, triplets[:, :2])
  scores = np.where(absent, 0.0, triplets[:, 2])
  return points, scores


def _frame(frame_id, people: list[tuple[np.ndarray, np.ndarray, float]]) -> _Frame:
  """Stacks (points, scores, person score) of one frame; people with no joint are dropped."""
  people = [p for p in people if np.isfinite(p[0]).any()]
  return _Frame(
      frame_id=frame_id,
      points=np.array([p[0] for p in people], np.float64).reshape(-1, NUM_JOINTS, 2),
      scores=np.array([p[1] for p in people], np.float64).reshape(-1, NUM_JOINTS),
      person_scores=np.array([p[2] for p in people], np.float64).reshape(-1))


def _read_coco_results(path: str, entries: list) -> list[_Frame]:
  by_image: dict = {}
  for index, entry in enumerate(entries):
    where = f"entry {index}"
    if not isinstance(entry, dict) or "image_id" not in entry or "keypoints" not in entry:
      raise KeypointFileError(path, f"{where} is not a COCO result: expected a dict with "
                              "'image_id' and 'keypoints'")
    image_id = entry["image_id"]
    if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
      raise KeypointFileError(path, f"{where}: 'image_id' is {image_id!r}, expected an "
                              "integer or a string")
    triplets = _triplets(path, f"{where}: 'keypoints'", entry["keypoints"], NUM_JOINTS)
    # Detectors write a joint they did not find as (0, 0, 0), if at all.
    points, scores = _person(triplets, (triplets == 0).all(axis=-1))
    person_score = entry.get("score")
    if person_score is not None and not isinstance(person_score, (int, float)):
      raise KeypointFileError(path, f"{where}: 'score' is {person_score!r}, expected a number")
    by_image.setdefault(image_id, []).append(
        (points, scores, np.nan if person_score is None else float(person_score)))
  return [_frame(image_id, people) for image_id, people in by_image.items()]


def _read_coco_annotations(path: str, content: dict
                           ) -> tuple[list[_Frame], tuple[int, int] | None]:
  images, annotations = content["images"], content["annotations"]
  if not isinstance(images, list) or not isinstance(annotations, list):
    raise KeypointFileError(path, "'images' and 'annotations' must be lists")
  ids, sizes = [], set()
  for index, image in enumerate(images):
    if not isinstance(image, dict) or "id" not in image:
      raise KeypointFileError(path, f"images[{index}] has no 'id'")
    ids.append(image["id"])
    sizes.add((image.get("width"), image.get("height")))
  people: dict = {image_id: [] for image_id in ids}
  for index, annotation in enumerate(annotations):
    where = f"annotations[{index}]"
    if not isinstance(annotation, dict) or "image_id" not in annotation:
      raise KeypointFileError(path, f"{where} has no 'image_id'")
    if annotation.get("iscrowd", 0) or annotation.get("num_keypoints") == 0:
      continue
    if annotation["image_id"] not in people:
      raise KeypointFileError(path, f"{where}: image_id {annotation['image_id']!r} is not "
                              "in 'images'")
    if "keypoints" not in annotation:
      raise KeypointFileError(path, f"{where} has no 'keypoints'")
    triplets = _triplets(path, f"{where}: 'keypoints'", annotation["keypoints"], NUM_JOINTS)
    labelled = triplets[:, 2] > 0
    triplets[:, 2] = 1.0  # ground truth: a labelled joint is certain.
    points, scores = _person(triplets, ~labelled)
    people[annotation["image_id"]].append((points, scores, np.nan))
  frames = [_frame(image_id, people[image_id]) for image_id in ids]
  image_size = None
  if len(sizes) == 1:
    width, height = sizes.pop()
    if isinstance(width, int) and isinstance(height, int):
      image_size = (width, height)
  return frames, image_size


_OPENPOSE_LAYOUTS = {25: skeleton.OPENPOSE_BODY_25_TO_COCO_17,
                     18: skeleton.OPENPOSE_COCO_18_TO_COCO_17}
_OPENPOSE_NAME = re.compile(r"(\d+)_keypoints\.json$")


def _read_openpose_file(path: str, content: dict, frame_id=None) -> _Frame:
  people = content.get("people")
  if not isinstance(people, list):
    raise KeypointFileError(path, "'people' is not a list")
  if frame_id is None:
    match = _OPENPOSE_NAME.search(os.path.basename(path))
    frame_id = int(match.group(1)) if match else os.path.basename(path)
  read = []
  for index, entry in enumerate(people):
    where = f"people[{index}]"
    if not isinstance(entry, dict):
      raise KeypointFileError(path, f"{where} is not a dict with 'pose_keypoints_2d'")
    # OpenPose before 1.2 wrote 'pose_keypoints'.
    values = entry.get("pose_keypoints_2d", entry.get("pose_keypoints"))
    if values is None:
      raise KeypointFileError(path, f"{where} has no 'pose_keypoints_2d'")
    count = len(values) // 3 if isinstance(values, list) and len(values) % 3 == 0 else 0
    if count not in _OPENPOSE_LAYOUTS:
      size = len(values) if isinstance(values, list) else type(values).__name__
      raise KeypointFileError(path, f"{where}: 'pose_keypoints_2d' has {size} numbers, "
                              "expected 75 (BODY_25) or 54 (COCO-18)")
    triplets = _triplets(path, f"{where}: 'pose_keypoints_2d'", values, count)
    triplets = triplets[np.asarray(_OPENPOSE_LAYOUTS[count])]
    points, scores = _person(triplets, (triplets == 0).all(axis=-1))
    read.append((points, scores, np.nan))
  return _frame(frame_id, read)


def _read_openpose_folder(path: str) -> list[_Frame]:
  by_number: dict[int, str] = {}
  for name in sorted(os.listdir(path)):
    if not name.endswith("_keypoints.json"):
      continue
    match = _OPENPOSE_NAME.search(name)
    if not match:
      raise KeypointFileError(os.path.join(path, name), "no frame number before "
                              "'_keypoints.json' (OpenPose names frames <video>_<number>_"
                              "keypoints.json)")
    number = int(match.group(1))
    if number in by_number:
      raise KeypointFileError(path, f"frame {number} twice: {by_number[number]} and {name} "
                              "(one folder must hold one video)")
    by_number[number] = name
  if not by_number:
    raise KeypointFileError(path, "folder holds no OpenPose *_keypoints.json files")
  frames = []
  for number, name in by_number.items():
    file_path = os.path.join(path, name)
    content = file_errors.read_json(file_path, KeypointFileError)
    if not isinstance(content, dict):
      raise KeypointFileError(file_path, "not an OpenPose frame: expected a dict with 'people'")
    frames.append(_read_openpose_file(file_path, content, frame_id=number))
  return frames


def _from_array(path: str, keypoints: np.ndarray, scores: np.ndarray | None,
                where: str) -> list[_Frame]:
  if keypoints.ndim != 3 or keypoints.shape[1:] not in ((NUM_JOINTS, 2), (NUM_JOINTS, 3)):
    raise KeypointFileError(path, f"{where} has shape {keypoints.shape}, expected "
                            f"{_COCO_LAYOUT} in COCO-17 order")
  if keypoints.shape[0] == 0:
    raise KeypointFileError(path, f"{where} has no frames")
  keypoints = keypoints.astype(np.float64)
  if scores is not None:
    if keypoints.shape[2] == 3:
      raise KeypointFileError(path, "gives scores twice: 'keypoints' (T, 17, 3) and "
                              "'scores'; keep one")
    if scores.shape != keypoints.shape[:2]:
      raise KeypointFileError(path, f"'scores' has shape {scores.shape}, expected "
                              f"{keypoints.shape[:2]} (T, 17) to match 'keypoints'")
  if keypoints.shape[2] == 2:
    given = np.ones(keypoints.shape[:2]) if scores is None else scores.astype(np.float64)
    keypoints = np.concatenate([keypoints, given[..., None]], axis=-1)
  absent = np.zeros(NUM_JOINTS, bool)
  frames = []
  for index, triplets in enumerate(keypoints):
    points, joint_scores = _person(triplets, absent)
    frames.append(_frame(index, [(points, joint_scores, np.nan)]))
  return frames


def _read_npy(path: str) -> list[_Frame]:
  try:
    keypoints = np.load(path, allow_pickle=False)
  except (OSError, ValueError) as e:
    raise KeypointFileError(path, f"not a readable .npy array: {e}") from e
  return _from_array(path, keypoints, None, "the array")


def _read_npz(path: str) -> tuple[list[_Frame], tuple[int, int] | None]:
  arrays, _ = file_errors.read_npz(path, KeypointFileError)
  if "keypoints" not in arrays:
    raise KeypointFileError(path, f"no 'keypoints' array (has {sorted(arrays)}); expected "
                            f"'keypoints' {_COCO_LAYOUT}")
  image_size = None
  if "image_size" in arrays:
    size = arrays["image_size"]
    if size.shape != (2,) or not np.all(size > 0):
      raise KeypointFileError(path, f"'image_size' is {size.tolist()}, expected "
                              "(width, height) in pixels")
    image_size = (int(size[0]), int(size[1]))
  return _from_array(path, arrays["keypoints"], arrays.get("scores"), "'keypoints'"), image_size


def _natural_key(frame_id) -> tuple:
  """Sorts "f2.jpg" before "f10.jpg"."""
  parts = re.split(r"(\d+)", str(frame_id))
  return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _order(path: str, file_frames: list[_Frame], frames: str) -> list[_Frame]:
  """Sorts frames; in a "sequence" of integer ids, inserts the gaps as empty frames."""
  ids = [f.frame_id for f in file_frames]
  numbered = all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids)
  ordered = sorted(file_frames, key=(lambda f: f.frame_id) if numbered
                   else (lambda f: _natural_key(f.frame_id)))
  if frames == "images" or not numbered:
    return ordered
  first, last = int(ordered[0].frame_id), int(ordered[-1].frame_id)
  span = last - first + 1
  if len(ordered) < _MIN_PRESENT_FRACTION * span:
    raise KeypointFileError(
        path, f"frame ids span {first}..{last} ({span} frames) but only {len(ordered)} are "
        "present; if these are separate images rather than frames of one video, read "
        "them with frames='images'")
  by_id = {int(f.frame_id): f for f in ordered}
  empty = np.zeros((0, NUM_JOINTS, 2))
  return [by_id[i] if i in by_id else _Frame(i, empty, empty[..., 0], np.zeros(0))
          for i in range(first, last + 1)]


def _candidate_scores(frame: _Frame) -> np.ndarray:
  """(P,) the entry's person score, else its mean joint score (absent joints count 0)."""
  return np.where(np.isnan(frame.person_scores), frame.scores.mean(axis=-1),
                  frame.person_scores)


def _choose(frame: _Frame, previous: np.ndarray | None) -> int:
  """Index of the person to keep in `frame`, given the last chosen (17, 2) or None."""
  scores = _candidate_scores(frame)
  if previous is None:
    return int(np.argmax(scores))
  both = ~np.isnan(frame.points[..., 0]) & ~np.isnan(previous[None, :, 0])
  distance = np.linalg.norm(frame.points - previous, axis=-1)
  mean = np.where(both.any(axis=-1),
                  np.where(both, distance, 0.0).sum(axis=-1) / np.maximum(both.sum(-1), 1),
                  np.inf)
  # Nearest first, then higher score: lexsort sorts by its last key first.
  return int(np.lexsort((-scores, mean))[0])


def _to_track(path: str, file_frames: list[_Frame], person: str,
              image_size: tuple[int, int] | None) -> KeypointTrack:
  count = len(file_frames)
  points = np.full((count, NUM_JOINTS, 2), np.nan, np.float32)
  scores = np.zeros((count, NUM_JOINTS), np.float32)
  people = np.zeros(count, np.int32)
  previous = None
  for t, frame in enumerate(file_frames):
    people[t] = len(frame.points)
    if people[t] == 0:
      continue
    chosen = _choose(frame, previous if person == "track" else None)
    points[t], scores[t] = frame.points[chosen], frame.scores[chosen]
    previous = frame.points[chosen]
  return KeypointTrack(points=points, scores=scores,
                       frame_ids=[f.frame_id for f in file_frames], image_size=image_size,
                       people=people, source=path)
