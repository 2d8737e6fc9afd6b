"""Video decoding for the image builders (PyAV, FFmpeg underneath).

Frames come out as (H, W, 3) uint8 RGB in decode order; a missing or undecodable file
raises `VideoFileError` naming it.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import numpy as np

from jpose import file_errors


class VideoFileError(file_errors.SourceFileError):
  """A video file is missing or cannot be decoded."""


def read_frames(path: str, indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
  """Yields (index, frame) for the wanted frame indices (0-based, ascending), in order.

  Every frame up to the last wanted one is decoded (inter-coded video has no cheaper
  exact way); frames are converted to RGB only when wanted. Indices past the video's
  end are simply not yielded.
  """
  import av  # an optional dependency: only the video builders need it

  wanted = sorted(set(int(i) for i in indices))
  if not wanted:
    return
  if not os.path.exists(path):
    raise VideoFileError(path, "file not found")
  try:
    container = av.open(path)
  except (av.error.FFmpegError, OSError) as e:
    raise VideoFileError(path, f"not a readable video (truncated or corrupt?): {e}") from e
  with container:
    if not container.streams.video:
      raise VideoFileError(path, "holds no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame-parallel decoding inside FFmpeg
    position = 0
    wanted_iter = iter(wanted)
    target = next(wanted_iter)
    try:
      for frame in container.decode(stream):
        if position == target:
          yield position, frame.to_ndarray(format="rgb24")
          target = next(wanted_iter, None)
          if target is None:
            return
        position += 1
    except av.error.FFmpegError as e:
      raise VideoFileError(path, f"decoding failed at frame {position}: {e}") from e

