"""jpose.infer refuses to lift unrelated images as a video (issue 27.2)."""

import json
import os

import numpy as np
import pytest

from jpose import infer
from jpose.formats import keypoints as keypoint_files

_FIXTURE = os.path.join("mmpose_fixtures", "coco", "test_coco.json")


def _annotations(tmp_path, ids):
  person = [10.0, 20.0, 2] * 17
  content = {"images": [{"id": i, "width": 64, "height": 64} for i in ids],
             "annotations": [{"image_id": i, "keypoints": person, "num_keypoints": 17}
                             for i in ids]}
  path = tmp_path / "annotations.json"
  path.write_text(json.dumps(content))
  return str(path)


def test_sparse_annotation_ids_are_refused_as_a_sequence(tmp_path):
  path = _annotations(tmp_path, [785, 40083, 196141])
  track = keypoint_files.read_keypoints(path, frames="sequence")
  with pytest.raises(ValueError, match=r"annotations.json: image ids 785, 40083, 196141 are "
                     r"not consecutive.*--frames=images"):
    infer.check_consecutive(path, track, "sequence")
  infer.check_consecutive(path, keypoint_files.read_keypoints(path, frames="images"), "images")


def test_consecutive_annotation_ids_are_a_sequence(tmp_path):
  path = _annotations(tmp_path, [7, 8, 9])
  infer.check_consecutive(path, keypoint_files.read_keypoints(path), "sequence")


def test_real_coco_annotation_file_is_refused(real_data_dir):
  path = os.path.join(real_data_dir, _FIXTURE)
  track = keypoint_files.read_keypoints(path, frames="sequence")
  assert list(track.frame_ids) == [785, 40083, 196141, 197388]
  with pytest.raises(ValueError, match="--frames=images"):
    infer.check_consecutive(path, track, "sequence")


def test_readme_example_keypoint_file_is_one_video():
  """colab/example_keypoints.json, which the README points to: 50 consecutive frames of one
  person, the right wrist under the score threshold in frames 20-23."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "colab",
                      "example_keypoints.json")
  track = keypoint_files.read_keypoints(path)
  infer.check_consecutive(path, track, "sequence")
  assert track.points.shape == (50, 17, 2) and list(track.frame_ids) == list(range(50))
  assert sorted(map(tuple, np.argwhere(track.scores < 0.3))) == [(t, 10) for t in range(20, 24)]
