"""Videos of a lifted clip: the 2D keypoints over the input video beside the 3D skeleton.

`write_animation` renders one matplotlib figure per frame (reused across frames) over the
input video's frames (`jpose.formats.video.read_video`) and encodes it to .mp4 (PyAV) or
.gif (Pillow).
"""

from __future__ import annotations

from collections.abc import Iterable
import fractions
import os

from matplotlib import figure as figure_lib
from matplotlib.backends import backend_agg
import numpy as np
from PIL import Image
import tqdm

from jpose.evaluate import plots
from jpose.geometry import skeleton as skeleton_lib

# The view a still figure uses (plots.draw_3d's default); the animation turns away from it.
_START_AZIMUTH = -70.0
_DPI = 100


def write_animation(path: str, poses_3d: np.ndarray, keypoints_2d: np.ndarray, *,
                    skeleton_2d: skeleton_lib.Skeleton = skeleton_lib.COCO_17,
                    frames: Iterable[np.ndarray] | None = None,
                    image_size: tuple[int, int] | None = None, fps: float = 25.0,
                    missing: np.ndarray | None = None, degrees_per_second: float = 30.0,
                    progress: bool = True, title: str = "", panel_height: int = 480) -> str:
  """Writes a side-by-side video: 2D keypoints over the frames | the turning 3D skeleton.

  Args:
    path: output file, `.mp4` (H.264 via PyAV, MPEG-4 part 2 where the bundled FFmpeg
      lacks libx264) or `.gif` (Pillow).
    poses_3d: (T, 17, 3) root-relative camera-frame poses in mm, H36M-17 layout.
    keypoints_2d: (T, J, 2) keypoints in `skeleton_2d`'s layout, in continuous pixel
      coordinates (pixel (i, j) spans [j, j + 1] x [i, i + 1]); NaN joints are not drawn.
    frames: (H, W, 3) uint8 frames, at least T of them (e.g. a
      `jpose.formats.video.VideoFrames`); None draws the keypoints on a plain background of
      `image_size`.
    image_size: (width, height) of the plain background; required without `frames`.
    fps: frame rate of the output.
    missing: (T, J) bool, joints that were interpolated rather than detected: drawn as
      hollow grey rings with dashed bones.
    degrees_per_second: how fast the 3D view turns about the vertical axis.
    progress: show a tqdm bar over the frames.
    title: shown above the 3D panel.
    panel_height: height of the output in pixels; the 2D panel keeps the frame's aspect
      ratio and the 3D panel is square.

  Returns:
    `path`.
  """
  poses_3d = np.asarray(poses_3d, np.float64)
  keypoints_2d = np.asarray(keypoints_2d, np.float64)
  extension = os.path.splitext(path)[1].lower()
  if extension not in (".mp4", ".gif"):
    raise ValueError(f"{path}: the animation is written as .mp4 or .gif, not {extension!r}")
  if not fps > 0:
    raise ValueError(f"{path}: fps must be positive, got {fps}")
  num_frames = _check_inputs(poses_3d, keypoints_2d, skeleton_2d, missing)
  if missing is not None:
    missing = np.asarray(missing, bool)
  frame_iter = iter(frames) if frames is not None else None
  first = None
  if frame_iter is not None:
    first = next(frame_iter, None)
    if first is not None:
      first = np.asarray(first)
    if first is None:
      raise ValueError(f"{path}: `frames` holds no frame, but poses_3d has {num_frames}")
    width, height = first.shape[1], first.shape[0]
    if image_size is not None and tuple(image_size) != (width, height):
      raise ValueError(f"{path}: image_size {tuple(image_size)} differs from the frames' "
                       f"(width, height) {(width, height)}")
  elif image_size is None:
    raise ValueError(f"{path}: with no `frames`, `image_size` (width, height) is required "
                     "to size the 2D panel")
  else:
    width, height = int(image_size[0]), int(image_size[1])

  renderer = _Renderer(poses_3d, (width, height), skeleton_2d, panel_height, title)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  encoder = _Mp4Encoder(path, fps) if extension == ".mp4" else _GifEncoder(path, fps)
  background = np.full((height, width, 3), 255, np.uint8) if frame_iter is None else None
  with tqdm.tqdm(total=num_frames, disable=not progress, unit="frame",
                 desc=os.path.basename(path)) as bar:
    try:
      for t in range(num_frames):
        if frame_iter is None:
          image = background
        elif t == 0:
          image = first
        else:
          image = next(frame_iter, None)
          if image is None:
            raise ValueError(f"{path}: `frames` ran out after {t} frames, but poses_3d and "
                             f"keypoints_2d have {num_frames}")
          image = np.asarray(image)
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
          raise ValueError(f"{path}: frame {t} is {image.dtype} {image.shape}; every frame "
                           f"must be uint8 ({height}, {width}, 3) like the first")
        rgb = renderer.render(t, image, keypoints_2d[t],
                              None if missing is None else missing[t],
                              azim=_START_AZIMUTH + degrees_per_second * t / fps)
        encoder.add(rgb)
        bar.update()
    except BaseException:
      encoder.abort()
      raise
  encoder.close()
  return path


def _check_inputs(poses_3d, keypoints_2d, skeleton_2d, missing) -> int:
  num_joints_3d = skeleton_lib.H36M_17.num_joints
  if poses_3d.ndim != 3 or poses_3d.shape[1:] != (num_joints_3d, 3):
    raise ValueError(f"poses_3d must be (T, {num_joints_3d}, 3), got {poses_3d.shape}")
  num_frames = poses_3d.shape[0]
  if num_frames == 0:
    raise ValueError("poses_3d holds no frame")
  expected = (num_frames, skeleton_2d.num_joints, 2)
  if keypoints_2d.shape != expected:
    raise ValueError(f"keypoints_2d must be {expected} (T from poses_3d, J from "
                     f"{skeleton_2d.name}), got {keypoints_2d.shape}")
  if missing is not None and np.shape(missing) != expected[:2]:
    raise ValueError(f"missing must be {expected[:2]}, got {np.shape(missing)}")
  if not np.isfinite(poses_3d).all():
    raise ValueError("poses_3d holds NaN or infinite values")
  return num_frames


class _Renderer:
  """One Agg figure for the whole clip; each frame swaps its two axes' data for the next."""

  def __init__(self, poses_3d: np.ndarray, image_size: tuple[int, int],
               skeleton_2d: skeleton_lib.Skeleton, panel_height: int, title: str):
    width, height = image_size
    panel_height = int(panel_height) // 2 * 2  # yuv420p needs even sizes
    self._panel_height = panel_height
    self._left_width = max(2, int(round(panel_height * width / height)))
    total_width = (self._left_width + panel_height) // 2 * 2
    self._scale = (self._left_width / width, panel_height / height)
    self._skeleton_2d = skeleton_2d
    self._title = title
    self._num_frames = len(poses_3d)
    self._poses_3d = poses_3d
    # One cube for the whole clip, so the skeleton neither jumps nor changes size.
    points = plots.to_plot_frame(poses_3d).reshape(-1, 3)
    low, high = points.min(axis=0), points.max(axis=0)
    self._centre = (low + high) / 2
    self._radius = max(float((high - low).max()) / 2 * 1.05, 1.0)

    self._figure = figure_lib.Figure(figsize=(total_width / _DPI, panel_height / _DPI),
                                     dpi=_DPI, facecolor="white")
    self._canvas = backend_agg.FigureCanvasAgg(self._figure)
    # Axes placed by hand: the 2D panel is exactly the (resized) frame, no margins.
    self._ax_2d = self._figure.add_axes((0.0, 0.0, self._left_width / total_width, 1.0))
    left, right = self._left_width / total_width, 1.0 - self._left_width / total_width
    # Inset so that the tick labels of the turning cube stay inside the panel.
    self._ax_3d = self._figure.add_axes((left + 0.06 * right, 0.04, 0.84 * right, 0.86),
                                        projection="3d")
    self._ax_3d.tick_params(labelsize=7)
    # The title is figure text: an axes title would sit outside a two-line panel's top.
    self._label = self._figure.text(left + right / 2, 0.98, "", ha="center", va="top")
    # Agg truncates the figure's size in pixels; crop what it gives to even numbers.
    canvas_width, canvas_height = self._canvas.get_width_height()
    self._size = (canvas_width // 2 * 2, canvas_height // 2 * 2)

  def render(self, t: int, image: np.ndarray, keypoints: np.ndarray,
             missing: np.ndarray | None, azim: float) -> np.ndarray:
    """-> (height, width, 3) uint8 RGB of frame t."""
    # Resizing here, once, is cheaper than letting Agg resample the full frame, and keeps
    # the panel one image pixel per output pixel.
    small = np.asarray(Image.fromarray(image).resize((self._left_width, self._panel_height),
                                                     Image.Resampling.BILINEAR))
    scaled = keypoints * np.asarray(self._scale)
    _remove_data(self._ax_2d)
    plots.draw_image(self._ax_2d, small, scaled, self._skeleton_2d,
                     missing=missing if missing is not None else np.zeros(len(keypoints), bool))
    _remove_data(self._ax_3d)
    plots.draw_3d(self._ax_3d, self._poses_3d[t], radius=self._radius, centre=self._centre,
                  azim=azim)
    counter = f"frame {t + 1}/{self._num_frames}"
    self._label.set_text(f"{self._title}\n{counter}" if self._title else counter)
    self._canvas.draw()
    rgba = np.asarray(self._canvas.buffer_rgba())
    width, height = self._size
    return np.ascontiguousarray(rgba[:height, :width, :3])


def _remove_data(ax) -> None:
  """Removes what the plots.draw_* functions add, keeping the axes' ticks and panes:
  rebuilding those (as ax.clear() makes the next draw do) took half the frame time."""
  for artist in [*ax.lines, *ax.collections, *ax.images]:
    artist.remove()


class _Mp4Encoder:
  """H.264 (libx264) where the bundled FFmpeg has it, else MPEG-4 part 2; yuv420p."""

  def __init__(self, path: str, fps: float):
    import av  # pylint: disable=g-import-not-at-top

    self._av = av
    self._path = path
    self._fps = fractions.Fraction(fps).limit_denominator(1001)
    self._container = None
    self._stream = None
    self._count = 0

  def _start(self, width: int, height: int):
    av = self._av
    self._container = av.open(self._path, mode="w")
    try:
      av.codec.Codec("libx264", "w")
      codec, options = "libx264", {"crf": "18", "preset": "veryfast"}
    except av.codec.codec.UnknownCodecError:
      codec, options = "mpeg4", {}
    self._stream = self._container.add_stream(codec, rate=self._fps, options=options)
    self._stream.width, self._stream.height = width, height
    self._stream.pix_fmt = "yuv420p"
    if codec == "mpeg4":
      # Its default 200 kb/s smears the video; this is near-transparent at 1080p.
      self._stream.bit_rate = 8_000_000

  def add(self, rgb: np.ndarray) -> None:
    if self._container is None:
      self._start(rgb.shape[1], rgb.shape[0])
    frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
    frame.pts = self._count  # in the stream's time base, 1 / fps
    self._count += 1
    self._container.mux(self._stream.encode(frame))

  def close(self) -> None:
    self._container.mux(self._stream.encode(None))  # flush the encoder's delayed frames
    self._container.close()

  def abort(self) -> None:
    if self._container is not None:
      self._container.close()
    if os.path.exists(self._path):
      os.remove(self._path)  # a half-written video would look like a finished one


class _GifEncoder:
  """Frames collected in memory (GIFs are for short clips), written by Pillow at close."""

  def __init__(self, path: str, fps: float):
    self._path = path
    self._duration_ms = max(int(round(1000 / fps)), 10)  # GIF delays are in 10 ms steps
    self._frames: list[Image.Image] = []

  def add(self, rgb: np.ndarray) -> None:
    # An adaptive palette per frame keeps the bone colours and the video's tones; the fast
    # octree takes 3 ms a frame where median cut takes 90 ms, for a little more banding.
    self._frames.append(Image.fromarray(rgb).quantize(colors=255,
                                                      method=Image.Quantize.FASTOCTREE))

  def close(self) -> None:
    self._frames[0].save(self._path, save_all=True, append_images=self._frames[1:],
                         duration=self._duration_ms, loop=0)

  def abort(self) -> None:
    self._frames.clear()
