"""COCO-17 keypoints from a video with MediaPipe's BlazePose landmark model, for users with
a video but no keypoint file. Runs the user's `pose_landmark_full.tflite` under
ai_edge_litert (`pip install -e '.[detector]'`) and follows one person from frame to frame.

Pixels are continuous coordinates, as everywhere in jpose: pixel (i, j) spans
[j, j + 1] x [i, i + 1]. The tensor layout and the tracking rule follow MediaPipe's pose
graphs (mediapipe/modules/pose_landmark/*.pbtxt); sources are cited where used.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from PIL import Image

from jpose import file_errors
from jpose.geometry import affine as affine_lib
from jpose.geometry import skeleton

INPUT_SIZE = 256
# tensors_to_pose_landmarks_and_segmentation.pbtxt (TensorsToLandmarksCalculator:
# num_landmarks 39, input_image_width/height 256, visibility/presence_activation SIGMOID):
# the first output is (1, 195) = 39 landmarks x (x, y, z, visibility, presence), x and y in
# input pixels, visibility and presence logits. 0-32 are the body; 33 and 34 are auxiliary
# points for the next frame's ROI; the rest are unused.
NUM_LANDMARKS = 39
_VALUES_PER_LANDMARK = 5
_AUX_CENTRE, _AUX_SCALE = 33, 34
# pose_landmarks_to_roi.pbtxt: AlignmentPointsRectsCalculator (centre: landmark 33; side:
# twice its distance to landmark 34; rotated so that 33 -> 34 points up), then
# RectTransformationCalculator with scale_x = scale_y = 1.5, square_long: true.
ROI_SCALE = 1.5
# tensors_to_pose_landmarks_and_segmentation.pbtxt: the second output, the pose flag, is
# thresholded at 0.5 as it is (TensorsToFloatsCalculator with no activation), so the model
# already gives a probability.
PRESENCE_THRESHOLD = 0.5
# An ROI smaller than this (in frame pixels) has lost the person.
_MIN_ROI_SIZE = 16.0

_MODEL_HELP = ("pose_landmark_full.tflite ships in the mediapipe pip package, under "
               "mediapipe/modules/pose_landmark/ (`pip download mediapipe --no-deps` and "
               "unzip the wheel); or give `python -m jpose.infer` a keypoint file "
               "(--keypoints) instead of --blazepose_model")


class ModelFileError(file_errors.SourceFileError):
  """The landmark model file is missing or is not a BlazePose landmark model."""


@dataclasses.dataclass(frozen=True)
class Roi:
  """A square region of a frame that the model sees: centre and side in frame pixels, and
  rotation in radians (0: the region's up is the frame's up; positive turns it clockwise
  on screen, as MediaPipe's NormalizedRect.rotation)."""

  centre_x: float
  centre_y: float
  size: float
  rotation: float = 0.0


def whole_frame_roi(width: int, height: int) -> Roi:
  """The whole frame, letterboxed: a square on its long side, centred, so that the shorter
  side is padded equally on both ends."""
  return Roi(width / 2, height / 2, float(max(width, height)))


def input_to_frame(roi: Roi, input_size: int = INPUT_SIZE) -> np.ndarray:
  """(2, 3) affine taking model-input pixels to frame pixels: the input's square is the
  ROI's, turned by its rotation."""
  scale = roi.size / input_size
  cos, sin = math.cos(roi.rotation), math.sin(roi.rotation)
  # The input's x and y axes in the frame (MediaPipe's LandmarkProjectionCalculator).
  linear = scale * np.array([[cos, -sin], [sin, cos]])
  centre = np.array([roi.centre_x, roi.centre_y])
  shift = centre - linear @ np.full(2, input_size / 2)
  return np.concatenate([linear, shift[:, None]], axis=1)


def frame_to_input(roi: Roi, input_size: int = INPUT_SIZE) -> np.ndarray:
  """(2, 3) affine taking frame pixels to model-input pixels; inverse of input_to_frame."""
  return affine_lib.invert_affine(input_to_frame(roi, input_size))


def crop_input(frame: np.ndarray, roi: Roi, input_size: int = INPUT_SIZE) -> np.ndarray:
  """(H, W, 3) uint8 frame -> (1, S, S, 3) float32 model input in [0, 1]: the ROI, resized
  bilinearly, black where it leaves the frame."""
  # Pillow's AFFINE wants, for each output pixel, where to sample the input: exactly the
  # input -> frame map. Its coordinates are continuous (pixel centres at +0.5), as ours.
  coefficients = tuple(input_to_frame(roi, input_size).ravel())
  crop = Image.fromarray(frame).transform((input_size, input_size), Image.Transform.AFFINE,
                                          coefficients, resample=Image.Resampling.BILINEAR,
                                          fillcolor=(0, 0, 0))
  return (np.asarray(crop, np.float32) / 255.0)[None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
  return 1.0 / (1.0 + np.exp(-x))


def decode_landmarks(raw: np.ndarray, roi: Roi, input_size: int = INPUT_SIZE) -> np.ndarray:
  """The model's first output ((1, 195) or (195,)) -> (39, 3): x, y in frame pixels and
  the landmark's visibility, sigmoid of its logit."""
  values = np.asarray(raw, np.float64).reshape(NUM_LANDMARKS, _VALUES_PER_LANDMARK)
  xy = affine_lib.apply_affine(input_to_frame(roi, input_size), values[:, :2])
  return np.concatenate([xy, _sigmoid(values[:, 3:4])], axis=1)


def to_coco_17(landmarks: np.ndarray) -> np.ndarray:
  """(39 or 33, 3) BlazePose landmarks -> (17, 3) COCO-17 (x, y, score)."""
  return landmarks[np.asarray(skeleton.BLAZEPOSE_33_TO_COCO_17)]


def next_roi(landmarks: np.ndarray, frame_size: tuple[int, int]) -> Roi | None:
  """The ROI for the next frame from this frame's (39, 3) landmarks, as MediaPipe's
  PoseLandmarksToRoi: centred on auxiliary landmark 33, side 2 x ROI_SCALE times its
  distance to landmark 34, turned so that 33 -> 34 points up.

  None (start again from the whole frame) when the region is degenerate or its centre has
  left the frame; its side is capped at twice the frame's long side.
  """
  width, height = frame_size
  centre, scale_point = landmarks[_AUX_CENTRE, :2], landmarks[_AUX_SCALE, :2]
  dx, dy = scale_point - centre
  size = 2.0 * math.hypot(dx, dy) * ROI_SCALE
  inside = 0.0 <= centre[0] <= width and 0.0 <= centre[1] <= height
  if not (math.isfinite(size) and size >= _MIN_ROI_SIZE and inside):
    return None
  # The region's down axis, (-sin, cos), must point from landmark 34 to 33.
  rotation = math.atan2(dx, -dy)
  return Roi(float(centre[0]), float(centre[1]), min(size, 2.0 * max(width, height)),
             rotation)


class BlazePose:
  """Frames in, COCO-17 keypoints out; tracks one person across consecutive frames.

  The first frame (and any frame after the person was lost) is seen whole, letterboxed;
  later frames through the ROI that the previous frame's landmarks give (`next_roi`).
  MediaPipe finds the first ROI with a separate person detector and refines landmarks with
  the model's heatmap output; this does neither, so it suits videos of one person who
  fills a fair part of the frame.
  """

  def __init__(self, model_path: str, num_threads: int | None = None):
    if not os.path.isfile(model_path):
      raise ModelFileError(model_path, f"BlazePose landmark model not found. {_MODEL_HELP}")
    try:
      from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("BlazePose runs under ai_edge_litert, which is not installed: "
                        "pip install -e '.[detector]'") from e
    try:
      self._interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
      self._interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
      raise ModelFileError(model_path, f"not a readable TFLite model: {e}") from e
    inputs = self._interpreter.get_input_details()
    expected = (1, INPUT_SIZE, INPUT_SIZE, 3)
    if (len(inputs) != 1 or tuple(inputs[0]["shape"]) != expected
        or inputs[0]["dtype"] != np.float32):
      found = [(tuple(d["shape"]), np.dtype(d["dtype"]).name) for d in inputs]
      raise ModelFileError(model_path, f"expected one float32 {expected} input (a BlazePose "
                           f"landmark model), found {found}")
    self._input_index = inputs[0]["index"]
    # MediaPipe splits the outputs by position (landmarks, pose flag, ...); picking them by
    # size says clearly when the file is some other model.
    by_size = {int(np.prod(d["shape"])): d["index"]
               for d in self._interpreter.get_output_details()}
    landmark_size = NUM_LANDMARKS * _VALUES_PER_LANDMARK
    if landmark_size not in by_size or 1 not in by_size:
      raise ModelFileError(model_path, f"expected a ({landmark_size},) landmark output and a "
                           f"pose-flag scalar (a BlazePose landmark model), found outputs of "
                           f"sizes {sorted(by_size)}")
    self._landmark_index, self._flag_index = by_size[landmark_size], by_size[1]
    self._roi: Roi | None = None
    self._frame_size: tuple[int, int] | None = None
    self.presence = 0.0  # the last frame's pose presence, in [0, 1]

  def reset(self) -> None:
    """Forgets the tracked person: the next frame is seen whole."""
    self._roi = None

  def __call__(self, frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame -> (17, 3) COCO-17 (x, y, score) in frame pixels.

    Scores are the landmarks' visibilities; all are 0 when the model finds no person
    (pose presence under 0.5), and the next frame is then seen whole.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
      raise ValueError(f"BlazePose takes (H, W, 3) uint8 RGB frames, got {frame.dtype} "
                       f"{frame.shape}")
    frame_size = (frame.shape[1], frame.shape[0])
    if frame_size != self._frame_size:
      self._roi, self._frame_size = None, frame_size
    whole = whole_frame_roi(*frame_size)
    landmarks, presence = self._run(frame, self._roi or whole)
    if presence < PRESENCE_THRESHOLD and self._roi is not None:
      # Lost the person: look at the whole frame now, where MediaPipe would re-detect.
      landmarks, presence = self._run(frame, whole)
    self.presence = presence
    if presence < PRESENCE_THRESHOLD:
      self._roi = None
      landmarks[:, 2] = 0.0
    else:
      self._roi = next_roi(landmarks, frame_size)
    return to_coco_17(landmarks)

  def _run(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
    self._interpreter.set_tensor(self._input_index, crop_input(frame, roi))
    self._interpreter.invoke()
    raw = self._interpreter.get_tensor(self._landmark_index)
    presence = float(np.ravel(self._interpreter.get_tensor(self._flag_index))[0])
    return decode_landmarks(raw, roi), presence
