"""Video decoding with PyAV (FFmpeg underneath): `read_frames` picks frames out for the
image builders, `read_video` opens a whole video for `jpose.infer`.

Frames come out as (H, W, 3) uint8 RGB in decode order; a missing or undecodable file
raises `VideoFileError` naming it.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator

import numpy as np

from jpose import file_errors


class VideoFileError(file_errors.SourceFileError):
  """A video file is missing or cannot be decoded."""


def _open(path: str):
  """The opened PyAV container of a file with a video stream, or a VideoFileError."""
  import av  # pylint: disable=g-import-not-at-top

  file_errors.require_file(path, VideoFileError)
  try:
    container = av.open(path)
  except (av.error.FFmpegError, OSError) as e:
    raise VideoFileError(path, f"not a readable video (truncated or corrupt?): {e}") from e
  if not container.streams.video:
    container.close()
    raise VideoFileError(path, "holds no video stream")
  return container


def _decoded(path: str):
  """Yields (position, PyAV frame) for every frame of the video stream, in order."""
  import av  # pylint: disable=g-import-not-at-top

  with _open(path) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame-parallel decoding inside FFmpeg
    position = 0
    try:
      for frame in container.decode(stream):
        yield position, frame
        position += 1
    except av.error.FFmpegError as e:
      raise VideoFileError(path, f"decoding failed at frame {position}: {e}") from e


def read_frames(path: str, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
  """Yields (index, frame) for the wanted frame indices (0-based, ascending), in order.

  Every frame up to the last wanted one is decoded (inter-coded video has no cheaper
  exact way); frames are converted to RGB only when wanted. Indices past the video's
  end are simply not yielded.
  """
  wanted = iter(sorted(set(int(i) for i in indices)))
  target = next(wanted, None)
  if target is None:
    return
  decoded = _decoded(path)
  try:
    for position, frame in decoded:
      if position == target:
        yield position, frame.to_ndarray(format="rgb24")
        target = next(wanted, None)
        if target is None:
          return
  finally:
    decoded.close()  # closes the container now, not whenever the generator is collected


@dataclasses.dataclass(frozen=True)
class VideoFrames:
  """A video file's properties; iterating it decodes the (H, W, 3) uint8 RGB frames in
  order (each iteration decodes the file afresh)."""

  path: str
  fps: float
  size: tuple[int, int]  # (width, height) in pixels
  num_frames: int  # from the stream header; estimated from the duration when it has none

  def __iter__(self) -> Iterator[np.ndarray]:
    for _, frame in _decoded(self.path):
      yield frame.to_ndarray(format="rgb24")


def read_video(path: str) -> VideoFrames:
  """Opens a video file; a missing or undecodable file raises `VideoFileError` naming it."""
  with _open(path) as container:
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
      raise VideoFileError(path, "the video stream states no frame rate")
    fps = float(rate)
    num_frames = stream.frames
    if not num_frames:
      # Some containers (e.g. raw or streamed files) carry no frame count: estimate it.
      if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
      else:
        seconds = (container.duration or 0) / 1_000_000  # av.time_base is microseconds
      num_frames = int(round(seconds * fps))
    return VideoFrames(path=path, fps=fps, size=(stream.width, stream.height),
                       num_frames=int(num_frames))
