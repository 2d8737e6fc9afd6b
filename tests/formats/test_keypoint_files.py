"""Users' 2D keypoint files: each format from small hand-made files, the real COCO
annotation fixture, person tracking, gap filling, and the H36M joints derived from COCO."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from jpose.formats import h36m_files
from jpose.formats import keypoints
from jpose.geometry import camera as camera_lib
from jpose.geometry import skeleton

COCO = skeleton.COCO_17.joint_names
BODY_25 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
           "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
           "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")
COCO_18 = tuple(name for name in BODY_25[:19] if name != "MidHip")
BLAZEPOSE_33 = ("nose", "left eye inner", "left eye", "left eye outer", "right eye inner",
                "right eye", "right eye outer", "left ear", "right ear", "mouth left",
                "mouth right", "left shoulder", "right shoulder", "left elbow",
                "right elbow", "left wrist", "right wrist", "left pinky", "right pinky",
                "left index", "right index", "left thumb", "right thumb", "left hip",
                "right hip", "left knee", "right knee", "left ankle", "right ankle",
                "left heel", "right heel", "left foot index", "right foot index")


@pytest.fixture
def real_file():
  """real_file(relative) -> the path under $JPOSE_DATA_DIR: skips when the variable is
  unset, fails when it is set and the file is missing (CI sets it)."""
  def find(relative: str) -> str:
    root = os.environ.get("JPOSE_DATA_DIR")
    if not root:
      pytest.skip("set JPOSE_DATA_DIR to the shared real-data folder")
    path = os.path.join(root, relative)
    if not os.path.exists(path):
      pytest.fail(f"JPOSE_DATA_DIR={root} is set but {relative} is not in it")
    return path
  return find


def _person(x: float, y: float = 50.0, score: float = 0.9) -> list[float]:
  """A flat COCO-17 keypoint list with joint j at (x + j, y)."""
  return [v for j in range(17) for v in (x + j, y, score)]


def _write_json(path, content) -> str:
  path.write_text(json.dumps(content))
  return str(path)


def test_coco_results_with_a_gap_and_two_people(tmp_path):
  one = _person(100.0)
  one[0:3] = [0, 0, 0]  # the nose not found.
  path = _write_json(tmp_path / "results.json", [
      {"image_id": 13, "category_id": 1, "keypoints": _person(130.0), "score": 0.8},
      {"image_id": 10, "category_id": 1, "keypoints": one, "score": 0.9},
      {"image_id": 10, "category_id": 1, "keypoints": _person(400.0), "score": 0.2},
      {"image_id": 11, "category_id": 1, "keypoints": _person(110.0), "score": 0.7},
  ])
  track = keypoints.read_keypoints(path)
  assert track.frame_ids == [10, 11, 12, 13]
  np.testing.assert_array_equal(track.people, [2, 1, 0, 1])
  assert track.image_size is None and track.source == path
  assert track.points.shape == (4, 17, 2) and track.points.dtype == np.float32
  assert np.isnan(track.points[0, 0]).all() and track.scores[0, 0] == 0.0
  np.testing.assert_allclose(track.points[0, 1], [101.0, 50.0])  # 0.9 beats 0.2.
  np.testing.assert_allclose(track.points[[1, 3], 16, 0], [126.0, 146.0])
  assert np.isnan(track.points[2]).all() and not track.scores[2].any()
  np.testing.assert_allclose(track.scores[1], 0.9, rtol=1e-6)

  as_images = keypoints.read_keypoints(path, frames="images")
  assert as_images.frame_ids == [10, 11, 13]
  np.testing.assert_array_equal(as_images.people, [2, 1, 1])


def test_file_name_ids_keep_natural_order(tmp_path):
  path = _write_json(tmp_path / "results.json", [
      {"image_id": f"frame_{i}.jpg", "keypoints": _person(float(i))} for i in (10, 2, 1)])
  track = keypoints.read_keypoints(path)
  assert track.frame_ids == ["frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
  np.testing.assert_allclose(track.points[:, 0, 0], [1.0, 2.0, 10.0])


def test_sparse_image_ids_as_a_sequence_are_refused(tmp_path):
  path = _write_json(tmp_path / "results.json", [
      {"image_id": i, "keypoints": _person(1.0)} for i in (785, 40083, 196141)])
  with pytest.raises(keypoints.KeypointFileError, match=r"785\.\.196141.*frames='images'"):
    keypoints.read_keypoints(path)
  assert keypoints.read_keypoints(path, frames="images").frame_ids == [785, 40083, 196141]


def test_real_coco_annotation_file(real_file):
  path = real_file("mmpose_fixtures/coco/test_coco.json")
  track = keypoints.read_keypoints(path)
  assert track.frame_ids == [785, 40083, 196141, 197388]  # the file's images order.
  # 14 annotations: 40083 and 196141 each have one with num_keypoints 0.
  np.testing.assert_array_equal(track.people, [1, 2, 4, 5])
  assert track.image_size is None  # 640x425, 500x333, 640x429, 640x392.
  with open(path) as f:
    annotation = json.load(f)["annotations"][0]
  assert annotation["image_id"] == 785
  raw = np.asarray(annotation["keypoints"], np.float32).reshape(17, 3)
  np.testing.assert_array_equal(track.points[0, 0], [367.0, 81.0])
  np.testing.assert_array_equal(track.points[0], raw[:, :2])
  np.testing.assert_array_equal(track.scores[0], 1.0)  # all 17 labelled.
  for t in range(1, 4):  # other frames: labelled joints score 1, the rest are NaN.
    labelled = track.scores[t] == 1.0
    assert np.isnan(track.points[t][~labelled]).all()
    assert not np.isnan(track.points[t][labelled]).any()


def test_coco_annotations_by_hand(tmp_path):
  kept = [10, 20, 2] * 17
  kept[3:6] = [0, 0, 0]  # LEye unlabelled.
  path = _write_json(tmp_path / "person_keypoints.json", {
      "images": [{"id": 7, "width": 640, "height": 480}, {"id": 3, "width": 640, "height": 480}],
      "annotations": [
          {"image_id": 3, "iscrowd": 0, "num_keypoints": 16, "keypoints": kept},
          {"image_id": 3, "iscrowd": 1, "num_keypoints": 17, "keypoints": [1, 1, 2] * 17},
          {"image_id": 3, "iscrowd": 0, "num_keypoints": 0, "keypoints": [0] * 51},
      ]})
  track = keypoints.read_keypoints(path)
  assert track.frame_ids == [7, 3] and track.image_size == (640, 480)
  np.testing.assert_array_equal(track.people, [0, 1])
  assert np.isnan(track.points[0]).all()
  assert np.isnan(track.points[1, 1]).all() and track.scores[1, 1] == 0.0
  np.testing.assert_array_equal(track.points[1, 2], [10.0, 20.0])
  assert track.scores[1].sum() == 16.0


def _openpose(people: list[list[float]]) -> dict:
  return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p}
                                     for p in people]}


def _named(names: tuple[str, ...]) -> list[float]:
  """Every joint at x = 10 * (the COCO index of its name) + 5, absent when COCO lacks it."""
  values = []
  for name in names:
    values += [10.0 * COCO.index(name) + 5, 7.0, 0.8] if name in COCO else [0.0, 0.0, 0.0]
  return values


def test_openpose_folder_body_25_in_frame_order(tmp_path):
  folder = tmp_path / "openpose"
  folder.mkdir()
  _write_json(folder / "clip_10_keypoints.json", _openpose([_named(BODY_25)]))
  _write_json(folder / "clip_2_keypoints.json", _openpose([]))
  _write_json(folder / "clip_9_keypoints.json", _openpose([[0.0] * 75, _named(BODY_25)]))
  (folder / "clip.mp4").write_bytes(b"")  # other files in the folder are left alone.
  track = keypoints.read_keypoints(str(folder))
  assert track.frame_ids == list(range(2, 11))
  # frame 2: a file with nobody; 3-8: no file; 9: one real person, one all-zero entry.
  np.testing.assert_array_equal(track.people, [0] * 7 + [1, 1])
  np.testing.assert_allclose(track.points[-1, :, 0], 10.0 * np.arange(17) + 5)
  np.testing.assert_allclose(track.points[-2:, :, 1], 7.0)
  np.testing.assert_allclose(track.scores[-1], 0.8, rtol=1e-6)


def test_openpose_single_coco_18_file(tmp_path):
  people = _named(COCO_18)
  people[0:3] = [0.0, 0.0, 0.0]  # nose not detected.
  path = _write_json(tmp_path / "video_000000000012_keypoints.json", _openpose([people]))
  track = keypoints.read_keypoints(path)
  assert track.frame_ids == [12]
  assert np.isnan(track.points[0, 0]).all() and track.scores[0, 0] == 0.0
  np.testing.assert_allclose(track.points[0, 1:, 0], 10.0 * np.arange(1, 17) + 5)


def test_detector_layout_maps_match_joint_names():
  def names(layout, index):
    return [layout[i].lower().replace("left ", "l").replace("right ", "r") for i in index]
  lower = [name.lower() for name in COCO]
  assert names(BODY_25, skeleton.OPENPOSE_BODY_25_TO_COCO_17) == lower
  assert names(COCO_18, skeleton.OPENPOSE_COCO_18_TO_COCO_17) == lower
  assert names(BLAZEPOSE_33, skeleton.BLAZEPOSE_33_TO_COCO_17) == lower


def test_numpy_files(tmp_path):
  xy = np.arange(3 * 17 * 2, dtype=np.float32).reshape(3, 17, 2)
  xy[1, 4] = np.nan
  np.save(tmp_path / "xy.npy", xy)
  track = keypoints.read_keypoints(str(tmp_path / "xy.npy"))
  assert track.frame_ids == [0, 1, 2]
  np.testing.assert_array_equal(track.points, xy)
  assert track.scores[1, 4] == 0.0 and track.scores.sum() == 3 * 17 - 1

  xys = np.concatenate([xy, np.full((3, 17, 1), 0.25, np.float32)], axis=-1)
  xys[2] = np.nan  # nobody in frame 2.
  np.save(tmp_path / "xys.npy", xys)
  track = keypoints.read_keypoints(str(tmp_path / "xys.npy"))
  np.testing.assert_array_equal(track.people, [1, 1, 0])
  np.testing.assert_array_equal(track.scores[0], 0.25)

  scores = np.full((3, 17), 0.5, np.float32)
  np.savez(tmp_path / "k.npz", keypoints=xy, scores=scores, image_size=np.array([1920, 1080]))
  track = keypoints.read_keypoints(str(tmp_path / "k.npz"))
  assert track.image_size == (1920, 1080)
  assert track.scores[0, 0] == 0.5 and track.scores[1, 4] == 0.0


def test_tracking_follows_the_nearest_person_over_a_stranger(tmp_path):
  path = _write_json(tmp_path / "results.json", [
      {"image_id": 0, "keypoints": _person(100.0, score=0.9)},
      {"image_id": 0, "keypoints": _person(300.0, score=0.6)},
      {"image_id": 1, "keypoints": _person(500.0, score=0.99)},  # a stranger walks in.
      {"image_id": 1, "keypoints": _person(105.0, score=0.3)},
      {"image_id": 2, "keypoints": _person(110.0, score=0.3), "score": 0.1},
      {"image_id": 2, "keypoints": _person(495.0, score=0.3), "score": 0.95},
  ])
  tracked = keypoints.read_keypoints(path)
  np.testing.assert_allclose(tracked.points[:, 0, 0], [100.0, 105.0, 110.0])
  # Without person scores the mean joint score ranks; with them, the person score.
  highest = keypoints.read_keypoints(path, person="highest_score")
  np.testing.assert_allclose(highest.points[:, 0, 0], [100.0, 500.0, 495.0])


def test_drop_low_confidence(tmp_path):
  xys = np.zeros((2, 17, 3), np.float32)
  xys[..., 0] = 5.0
  xys[..., 2] = 0.9
  xys[0, 3, 2] = 0.2
  xys[1, :, 2] = 0.4
  np.save(tmp_path / "xys.npy", xys)
  track = keypoints.drop_low_confidence(keypoints.read_keypoints(str(tmp_path / "xys.npy")),
                                        threshold=0.5)
  np.testing.assert_array_equal(np.isnan(track.points[..., 0]).sum(axis=1), [1, 17])
  assert np.isnan(track.points[0, 3]).all()
  np.testing.assert_allclose(track.scores[0, 3], 0.2)  # the score stays.


def test_fill_missing_interpolates_and_holds_ends():
  points = np.full((6, 3, 2), np.nan, np.float32)
  points[0, 0] = [10.0, 1.0]
  points[3, 0] = [40.0, 4.0]
  points[2, 1] = [7.0, 8.0]  # the only frame joint 1 is seen.
  points[4, 0, 1] = 5.0  # a lone y without x is not a joint.
  filled, was_missing = keypoints.fill_missing(points)
  np.testing.assert_allclose(filled[:, 0, 0], [10, 20, 30, 40, 40, 40])
  np.testing.assert_allclose(filled[:, 0, 1], [1, 2, 3, 4, 4, 4])
  np.testing.assert_allclose(filled[:, 1], np.tile([7.0, 8.0], (6, 1)))
  assert np.isnan(filled[:, 2]).all()  # never seen.
  np.testing.assert_array_equal(was_missing[:, 0], [False, True, True, False, True, True])
  assert was_missing[:, 2].all() and was_missing[:, 1].sum() == 5


@pytest.mark.parametrize("name, content, error, message", [
    ("nowhere.json", None, FileNotFoundError, r"nowhere\.json: .*not found"),
    ("bad.json", '[{"image_id": 1,', keypoints.KeypointFileError,
     r"bad\.json: malformed JSON at line 1"),
    ("short.json", json.dumps([{"image_id": 0, "keypoints": [1] * 51},
                               {"image_id": 1, "keypoints": [1] * 50}]),
     keypoints.KeypointFileError, r"short\.json: entry 1: 'keypoints' has 50 numbers, "
     r"expected 51"),
    ("op_keypoints.json", json.dumps({"people": [{"pose_keypoints_2d": [1] * 60}]}),
     keypoints.KeypointFileError, r"people\[0\]: 'pose_keypoints_2d' has 60 numbers"),
    ("other.json", json.dumps({"frames": []}), keypoints.KeypointFileError,
     r"other\.json: JSON of no known keypoint format"),
    ("poses.csv", "1,2", keypoints.KeypointFileError, r"unknown extension '\.csv'"),
])
def test_errors_name_the_file_and_the_problem(tmp_path, name, content, error, message):
  if content is not None:
    (tmp_path / name).write_text(content)
  with pytest.raises(error, match=message):
    keypoints.read_keypoints(str(tmp_path / name))


def test_wrong_numpy_shapes_are_refused(tmp_path):
  np.save(tmp_path / "h36m.npy", np.zeros((4, 16, 2)))
  with pytest.raises(keypoints.KeypointFileError,
                     match=r"h36m\.npy: the array has shape \(4, 16, 2\), expected "
                     r"\(T, 17, 2\) or \(T, 17, 3\).*COCO-17"):
    keypoints.read_keypoints(str(tmp_path / "h36m.npy"))
  np.savez(tmp_path / "poses.npz", poses=np.zeros((4, 17, 2)))
  with pytest.raises(keypoints.KeypointFileError, match=r"no 'keypoints' array \(has \['poses'\]"):
    keypoints.read_keypoints(str(tmp_path / "poses.npz"))


def test_h36m_from_coco_by_hand():
  coco = np.full((17, 3), np.nan, np.float32)
  coco[COCO.index("Nose")] = [5.0, -10.0, 0.9]
  coco[COCO.index("LShoulder")] = [0.0, 0.0, 0.8]
  coco[COCO.index("RShoulder")] = [10.0, 0.0, 0.7]
  coco[COCO.index("LHip")] = [0.0, 20.0, 0.6]
  coco[COCO.index("RHip")] = [10.0, 20.0, 0.5]
  h36m = skeleton.h36m_from_coco(coco)
  joint = {name: h36m[skeleton.H36M_17.joint_names.index(name)] for name in
           ("Hip", "Spine", "Thorax", "Neck/Nose", "Head", "RHip", "LKnee")}
  np.testing.assert_allclose(joint["Hip"], [5.0, 20.0, 0.5])
  np.testing.assert_allclose(joint["Thorax"], [5.0, 0.0, 0.7])
  np.testing.assert_allclose(joint["Spine"], [5.0, 10.0, 0.5])
  np.testing.assert_allclose(joint["Neck/Nose"], [5.0, -10.0, 0.9])
  # thorax + 1.634 * (nose - thorax) = (5, 0) + 1.634 * (0, -10).
  np.testing.assert_allclose(joint["Head"], [5.0, -16.34, 0.7], rtol=1e-5)
  np.testing.assert_allclose(joint["RHip"], [10.0, 20.0, 0.5])
  assert np.isnan(joint["LKnee"]).all()

  coco[COCO.index("LHip")] = np.nan
  on_device = np.asarray(skeleton.h36m_from_coco(jnp.asarray(coco[None, :, :2])))[0]
  names = skeleton.H36M_17.joint_names
  assert np.isnan(on_device[[names.index("Hip"), names.index("Spine")]]).all()
  np.testing.assert_allclose(on_device[names.index("Head")], [5.0, -16.34], rtol=1e-5)


def test_derived_h36m_joints_on_real_ground_truth(real_file):
  # Every 5th frame of S9 Walking through camera 54138969 (323 poses); measured mean
  # errors: Hip 0.23 px, Spine 9.1, Thorax 16.6, Head 9.7.
  h36m_dir = os.path.dirname(real_file("h36m/cameras.h5"))
  params = h36m_files.read_cameras(f"{h36m_dir}/cameras.h5")[(9, "54138969")]
  camera = camera_lib.Camera(*(jnp.asarray(getattr(params, n), jnp.float32)
                               for n in ("R", "T", "f", "c", "k", "p")))
  world = h36m_files.read_positions_3d(h36m_files.positions_path(h36m_dir, 9, "Walking"))[::5]
  truth = np.asarray(camera_lib.project_world_to_image(jnp.asarray(world), camera))
  coco = np.full(truth.shape, np.nan, np.float32)
  for h36m_joint, coco_joint in enumerate(skeleton.COCO_17_TO_H36M_17):
    if coco_joint >= 0:
      coco[:, coco_joint] = truth[:, h36m_joint]
  derived = skeleton.h36m_from_coco(coco)
  error = dict(zip(skeleton.H36M_17.joint_names,
                   np.linalg.norm(derived - truth, axis=-1).mean(axis=0)))
  assert error["Hip"] < 0.5
  assert error["Spine"] < 12.0
  assert error["Thorax"] < 20.0
  assert error["Head"] < 13.0
  shared = [j for j, source in enumerate(skeleton.COCO_17_TO_H36M_17) if source >= 0]
  np.testing.assert_array_equal(derived[:, shared], truth[:, shared])
