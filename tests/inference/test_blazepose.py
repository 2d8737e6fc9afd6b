"""The BlazePose detector's pure parts (ROI affines, output decoding, the next-ROI rule),
its error messages, and its tracking loop on a stand-in TFLite model with known outputs."""

from __future__ import annotations

import importlib.util
import math
import sys

import numpy as np
import pytest

from jpose.geometry import affine as affine_lib
from jpose.inference import blazepose

# A 640 x 480 frame letterboxed into the 256 x 256 input: 2.5 frame pixels per input
# pixel, and 80 frame rows of padding above and below (32 input rows).
WIDTH, HEIGHT = 640, 480
WHOLE = blazepose.whole_frame_roi(WIDTH, HEIGHT)


def test_whole_frame_letterbox_by_hand():
  to_frame = blazepose.input_to_frame(WHOLE)
  corners = np.array([[0.0, 0.0], [128.0, 128.0], [256.0, 256.0]])
  np.testing.assert_allclose(affine_lib.apply_affine(to_frame, corners),
                             [[0.0, -80.0], [320.0, 240.0], [640.0, 560.0]], atol=1e-9)
  to_input = blazepose.frame_to_input(WHOLE)
  np.testing.assert_allclose(affine_lib.apply_affine(to_input, np.array([[0.0, 0.0]])),
                             [[0.0, 32.0]], atol=1e-9)


def test_affine_round_trip_through_a_turned_crop():
  roi = blazepose.Roi(centre_x=300.0, centre_y=200.0, size=500.0, rotation=0.3)
  points = np.random.default_rng(0).uniform(0, 640, (50, 2))
  to_input = blazepose.frame_to_input(roi)
  back = affine_lib.apply_affine(blazepose.input_to_frame(roi),
                                affine_lib.apply_affine(to_input, points))
  np.testing.assert_allclose(back, points, atol=1e-9)
  # A quarter turn: the input's x axis runs down the frame, 1 input pixel = 1 frame pixel.
  quarter = blazepose.Roi(100.0, 100.0, 256.0, math.pi / 2)
  np.testing.assert_allclose(
      affine_lib.apply_affine(blazepose.input_to_frame(quarter), np.array([[256.0, 128.0]])),
      [[100.0, 228.0]], atol=1e-9)


def test_crop_letterboxes_the_frame():
  frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
  frame[..., 0] = 255  # red
  crop = blazepose.crop_input(frame, WHOLE)
  assert crop.shape == (1, 256, 256, 3) and crop.dtype == np.float32
  # Input rows 32 to 223 hold the frame (frame rows 0 to 480 at 2.5 per row); the 32 rows
  # above and below are black padding.
  np.testing.assert_array_equal(crop[0, 32:224], np.broadcast_to([1.0, 0.0, 0.0], (192, 256, 3)))
  assert (crop[0, :32] == 0).all() and (crop[0, 224:] == 0).all()


def _raw_output():
  """A (1, 195) landmark tensor: landmark k at input pixel (10 + 5k, 20 + 3k), visibility
  logit 0 (sigmoid 0.5) except landmark 28, the right ankle, at log 3 (sigmoid 0.75)."""
  raw = np.zeros((blazepose.NUM_LANDMARKS, 5), np.float32)
  k = np.arange(blazepose.NUM_LANDMARKS)
  raw[:, 0], raw[:, 1] = 10 + 5 * k, 20 + 3 * k
  raw[28, 3] = math.log(3.0)
  return raw.reshape(1, -1)


def test_decode_to_frame_pixels_and_coco_slots():
  landmarks = blazepose.decode_landmarks(_raw_output(), WHOLE)
  coco = blazepose.to_coco_17(landmarks)
  assert coco.shape == (17, 3)

  def frame_xy(k):  # input (x, y) -> frame (2.5 x, 2.5 y - 80) under the letterbox
    return [2.5 * (10 + 5 * k), 2.5 * (20 + 3 * k) - 80]

  # COCO 0 nose <- BlazePose 0; 5 left shoulder <- 11; 16 right ankle <- 28.
  for coco_slot, landmark in ((0, 0), (5, 11), (16, 28)):
    np.testing.assert_allclose(coco[coco_slot, :2], frame_xy(landmark), atol=1e-4)
  np.testing.assert_allclose(coco[5, 2], 0.5)
  np.testing.assert_allclose(coco[16, 2], 0.75, atol=1e-6)


def _landmarks_with_aux(centre, scale_point):
  landmarks = np.zeros((blazepose.NUM_LANDMARKS, 3))
  landmarks[33, :2], landmarks[34, :2] = centre, scale_point
  return landmarks


def test_next_roi_from_the_auxiliary_landmarks():
  # Upright: 200 px from hips to the scale point -> a 2 x 200 x 1.5 = 600 px square.
  roi = blazepose.next_roi(_landmarks_with_aux((300, 400), (300, 200)), (WIDTH, HEIGHT))
  assert roi == blazepose.Roi(300.0, 400.0, 600.0, 0.0)
  # Lying with the head to the right: a quarter turn, whose "up" (the input's top centre)
  # lands 300 px right of the centre.
  roi = blazepose.next_roi(_landmarks_with_aux((300, 400), (500, 400)), (WIDTH, HEIGHT))
  assert roi.size == 600.0 and roi.rotation == pytest.approx(math.pi / 2)
  np.testing.assert_allclose(
      affine_lib.apply_affine(blazepose.input_to_frame(roi), np.array([[128.0, 0.0]])),
      [[600.0, 400.0]], atol=1e-9)
  # Degenerate or lost: start again from the whole frame.
  assert blazepose.next_roi(_landmarks_with_aux((300, 400), (300, 400)), (WIDTH, HEIGHT)) is None
  assert blazepose.next_roi(_landmarks_with_aux((700, 400), (700, 200)), (WIDTH, HEIGHT)) is None
  # Capped at twice the frame's long side.
  huge = blazepose.next_roi(_landmarks_with_aux((300, 400), (300, -4000)), (WIDTH, HEIGHT))
  assert huge.size == 2 * WIDTH


def test_missing_model_file_says_where_to_get_one(tmp_path):
  path = str(tmp_path / "pose_landmark_full.tflite")
  with pytest.raises(blazepose.ModelFileError) as error:
    blazepose.BlazePose(path)
  message = str(error.value)
  assert message.startswith(path)
  assert "mediapipe/modules/pose_landmark/" in message and "--keypoints" in message


def test_missing_runtime_says_how_to_install(tmp_path, monkeypatch):
  path = tmp_path / "pose_landmark_full.tflite"
  path.write_bytes(b"")
  # A None entry in sys.modules makes the import fail as if the package were absent.
  monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
  monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
  with pytest.raises(ImportError, match=r"pip install -e '\.\[detector\]'"):
    blazepose.BlazePose(str(path))


# The tests below run the real TFLite runtime (the optional `detector` extra) on a
# stand-in model built here.
needs_litert = pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                                  reason="ai_edge_litert is not installed (extra: detector)")


@needs_litert
def test_a_file_that_is_no_model(tmp_path):
  path = tmp_path / "pose_landmark_full.tflite"
  path.write_bytes(b"not a flatbuffer")
  with pytest.raises(blazepose.ModelFileError, match="not a readable TFLite model"):
    blazepose.BlazePose(str(path))


def _stand_in_model(landmarks: np.ndarray, flag: float) -> bytes:
  """A TFLite model with BlazePose's input and first two outputs that ignores its input:
  MEAN over the image, then two fully connected layers with zero weights, whose biases
  are the given (195,) landmark tensor and pose flag."""
  import flatbuffers  # pylint: disable=g-import-not-at-top
  from ai_edge_litert import schema_py_generated as schema  # pylint: disable=g-import-not-at-top

  landmarks = np.asarray(landmarks, np.float32).reshape(-1)
  contents = [None, np.array([1, 2, 3], np.int32), np.zeros((landmarks.size, 1), np.float32),
              landmarks, np.zeros((1, 1), np.float32), np.array([flag], np.float32)]
  buffers = []
  for content in contents:
    buffers.append(schema.BufferT())
    if content is not None:
      buffers[-1].data = np.frombuffer(content.tobytes(), np.uint8)

  def tensor(shape, buffer, dtype=schema.TensorType.FLOAT32):
    t = schema.TensorT()
    t.shape, t.buffer, t.type = list(shape), buffer, dtype
    return t

  tensors = [tensor((1, 256, 256, 3), 0), tensor((3,), 1, schema.TensorType.INT32),
             tensor((1, 1, 1, 1), 0), tensor((landmarks.size, 1), 2),
             tensor((landmarks.size,), 3), tensor((1, landmarks.size), 0),
             tensor((1, 1), 4), tensor((1,), 5), tensor((1, 1), 0)]
  codes = []
  for builtin in (schema.BuiltinOperator.MEAN, schema.BuiltinOperator.FULLY_CONNECTED):
    codes.append(schema.OperatorCodeT())
    codes[-1].builtinCode = codes[-1].deprecatedBuiltinCode = builtin
    codes[-1].version = 1

  def operator(code, inputs, output, options_type, options):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = code, inputs, [output]
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op

  mean_options = schema.ReducerOptionsT()
  mean_options.keepDims = True
  fc = schema.BuiltinOptions.FullyConnectedOptions
  operators = [operator(0, [0, 1], 2, schema.BuiltinOptions.ReducerOptions, mean_options),
               operator(1, [2, 3, 4], 5, fc, schema.FullyConnectedOptionsT()),
               operator(1, [2, 6, 7], 8, fc, schema.FullyConnectedOptionsT())]
  graph = schema.SubGraphT()
  graph.tensors, graph.operators, graph.inputs, graph.outputs = tensors, operators, [0], [5, 8]
  model = schema.ModelT()
  model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
  builder = flatbuffers.Builder(1024)
  builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
  return bytes(builder.Output())


def _raw_with_aux():
  """_raw_output with the ROI points at input (128, 160) (hips) and (128, 60): a 100-input-
  pixel radius, so 250 frame pixels under the letterbox."""
  raw = _raw_output().reshape(blazepose.NUM_LANDMARKS, 5)
  raw[33, :2], raw[34, :2] = (128, 160), (128, 60)
  return raw.reshape(1, -1)


@needs_litert
def test_tracks_through_the_previous_frames_roi(tmp_path):
  path = tmp_path / "stand_in.tflite"
  path.write_bytes(_stand_in_model(_raw_with_aux(), flag=0.9))
  detector = blazepose.BlazePose(str(path))
  frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
  first = detector(frame)
  # First frame: seen whole, as decode_landmarks under the letterbox gives.
  np.testing.assert_allclose(
      first, blazepose.to_coco_17(blazepose.decode_landmarks(_raw_with_aux(), WHOLE)),
      atol=1e-4)
  assert detector.presence == pytest.approx(0.9)
  # Second frame: through the ROI centred on the hips (input (128, 160) -> frame
  # (320, 320)) with side 2 x 250 x 1.5 = 750.
  second = detector(frame)
  tracked = blazepose.Roi(320.0, 320.0, 750.0, 0.0)
  np.testing.assert_allclose(
      second, blazepose.to_coco_17(blazepose.decode_landmarks(_raw_with_aux(), tracked)),
      atol=1e-3)


@needs_litert
def test_no_person_zeroes_the_scores(tmp_path):
  path = tmp_path / "stand_in.tflite"
  path.write_bytes(_stand_in_model(_raw_with_aux(), flag=0.2))
  detector = blazepose.BlazePose(str(path))
  frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
  for _ in range(2):  # each frame seen whole again, since the person was never found
    keypoints = detector(frame)
    np.testing.assert_array_equal(keypoints[:, 2], 0.0)
    np.testing.assert_allclose(
        keypoints[:, :2],
        blazepose.to_coco_17(blazepose.decode_landmarks(_raw_with_aux(), WHOLE))[:, :2],
        atol=1e-4)


@needs_litert
def test_another_model_is_named_as_such(tmp_path):
  path = tmp_path / "other.tflite"
  path.write_bytes(_stand_in_model(np.zeros(10), flag=0.9))
  with pytest.raises(blazepose.ModelFileError, match=r"sizes \[1, 10\]"):
    blazepose.BlazePose(str(path))
