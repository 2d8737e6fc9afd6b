"""jpose's cache of derived body files (the converted ANNY model, the default pose
library): where it lives, and how a file is written into it whole or not at all."""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO, Callable

DEFAULT_DIR = os.path.join("~", ".cache", "jpose")


def folder(cache_dir: str | None = None) -> str:
  """The cache folder: `cache_dir`, else ~/.cache/jpose."""
  return os.path.expanduser(cache_dir or DEFAULT_DIR)


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
  """Calls write(f) on a temporary file beside `path`, then renames it to `path`: a reader
  sees the old file or the whole new one, never a partial file."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  name = os.path.basename(path)
  fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is as readable as any file.
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
