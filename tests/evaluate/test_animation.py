"""The lifted-clip animation: an .mp4 and a .gif of synthetic poses over synthetic frames,
decoded back and checked pixel by pixel, and `read_video` on the file written."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
import pytest

from jpose.formats import video as video_lib
from jpose.evaluate import animation
from jpose.geometry import skeleton

NUM_FRAMES = 12
FRAME_WIDTH, FRAME_HEIGHT = 320, 240
COLOUR = (40, 160, 220)  # the frames' solid colour
# A panel as tall as the frame: one frame pixel per output pixel, so a joint's frame pixel
# is its pixel in the output too.
PANEL_HEIGHT = FRAME_HEIGHT
OUTPUT_SIZE = (FRAME_WIDTH + PANEL_HEIGHT, PANEL_HEIGHT)  # 2D panel | square 3D panel
# Only two joints are on screen, far apart and with NaN neighbours, so no bone is drawn:
# the nose, detected, and the left wrist, interpolated.
NOSE, LEFT_WRIST = 0, 9
# Continuous pixel coordinates: (100.5, 120.5) is the centre of pixel row 120, column 100.
NOSE_XY, WRIST_XY = (100.5, 120.5), (220.5, 120.5)
# Largest per-channel error the libx264 (crf 18, yuv420p) round trip put on the flat
# background: measured 2.
CODEC_TOLERANCE = 6


def _clip():
  rng = np.random.default_rng(0)
  pose = rng.normal(0.0, 300.0, (17, 3))
  pose[0] = 0.0  # root-relative
  poses_3d = np.repeat(pose[None], NUM_FRAMES, axis=0)
  keypoints = np.full((NUM_FRAMES, skeleton.COCO_17.num_joints, 2), np.nan)
  keypoints[:, NOSE] = NOSE_XY
  keypoints[:, LEFT_WRIST] = WRIST_XY
  missing = np.zeros(keypoints.shape[:2], bool)
  missing[:, LEFT_WRIST] = True
  return poses_3d, keypoints, missing


def _frames(count: int = NUM_FRAMES):
  return (np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), COLOUR, np.uint8) for _ in range(count))


@pytest.fixture(scope="module")
def mp4_path(tmp_path_factory) -> str:
  poses_3d, keypoints, missing = _clip()
  path = str(tmp_path_factory.mktemp("animation") / "clip.mp4")
  written = animation.write_animation(path, poses_3d, keypoints, frames=_frames(), fps=10.0,
                                      missing=missing, panel_height=PANEL_HEIGHT,
                                      progress=False)
  assert written == path
  return path


def test_mp4_decodes_to_the_frames_written(mp4_path):
  video = video_lib.read_video(mp4_path)
  assert video.fps == 10.0
  assert video.size == OUTPUT_SIZE
  assert video.num_frames == NUM_FRAMES
  frames = np.stack(list(video)).astype(int)
  assert frames.shape == (NUM_FRAMES, OUTPUT_SIZE[1], OUTPUT_SIZE[0], 3)
  left = frames[:, :, :FRAME_WIDTH]
  # Background of the 2D panel, away from both joints: the frames' colour.
  away = left[:, 160:230, 10:300]
  assert np.abs(away - COLOUR).max() <= CODEC_TOLERANCE
  # The detected nose is a filled dot: its own pixel is far from the background.
  x, y = map(int, NOSE_XY)
  assert np.abs(left[:, y, x] - COLOUR).max(axis=-1).min() > 60
  # The interpolated wrist is a hollow ring: background at its centre, ink 4 px out.
  x, y = map(int, WRIST_XY)
  assert np.abs(left[:, y, x] - COLOUR).max() <= CODEC_TOLERANCE
  assert np.abs(left[:, y, x - 4] - COLOUR).max(axis=-1).min() > 30
  # The 3D panel turns: 30 degrees/s over 1.1 s changes it between the first and last frame.
  right = frames[:, :, FRAME_WIDTH:]
  assert np.abs(right[0] - right[-1]).mean() > 1.0


def test_gif_on_a_plain_background(tmp_path):
  poses_3d, keypoints, missing = _clip()
  path = animation.write_animation(str(tmp_path / "clip.gif"), poses_3d, keypoints,
                                   image_size=(FRAME_WIDTH, FRAME_HEIGHT), fps=10.0,
                                   missing=missing, panel_height=PANEL_HEIGHT, progress=False)
  with Image.open(path) as gif:
    assert gif.n_frames == NUM_FRAMES
    assert gif.size == OUTPUT_SIZE
    assert gif.info["duration"] == 100  # ms at 10 fps
    gif.seek(NUM_FRAMES - 1)
    last = np.asarray(gif.convert("RGB")).astype(int)
  # White where no frame is given, within the GIF palette's rounding (measured 253).
  assert (last[160:230, 10:300] >= 250).all()
  x, y = map(int, NOSE_XY)
  assert last[y, x].max() < 100  # the black dot


def test_frames_running_out_names_both_counts(tmp_path):
  poses_3d, keypoints, _ = _clip()
  path = str(tmp_path / "short.mp4")
  with pytest.raises(ValueError, match=f"ran out after 5 frames.*have {NUM_FRAMES}"):
    animation.write_animation(path, poses_3d, keypoints, frames=_frames(5),
                              panel_height=PANEL_HEIGHT, progress=False)
  assert not os.path.exists(path)  # no half-written video left behind


def test_plain_background_needs_image_size(tmp_path):
  poses_3d, keypoints, _ = _clip()
  with pytest.raises(ValueError, match="image_size"):
    animation.write_animation(str(tmp_path / "clip.mp4"), poses_3d, keypoints,
                              progress=False)


def test_keypoints_must_match_the_2d_skeleton(tmp_path):
  poses_3d, keypoints, _ = _clip()
  with pytest.raises(ValueError, match="coco_17"):
    animation.write_animation(str(tmp_path / "clip.mp4"), poses_3d, keypoints[:, :16],
                              image_size=(FRAME_WIDTH, FRAME_HEIGHT), progress=False)


def test_read_video_names_a_missing_or_broken_file(tmp_path):
  missing_path = str(tmp_path / "absent.mp4")
  with pytest.raises(video_lib.VideoFileError, match="absent.mp4: file not found"):
    video_lib.read_video(missing_path)
  broken = tmp_path / "broken.mp4"
  broken.write_bytes(b"not a video at all")
  with pytest.raises(video_lib.VideoFileError, match="broken.mp4: not a readable video"):
    video_lib.read_video(str(broken))
