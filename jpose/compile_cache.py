"""JAX's persistent compilation cache for jpose's commands, on by default.

A cold ResNet-50 train step takes 35-75 s to compile on a GPU; with the cache a rerun,
a resume or `--mode=eval` loads the executable from disk instead. The folder is
$JPOSE_COMPILATION_CACHE, or ~/.cache/jpose/xla when that is unset; "off" turns it off.
"""

from __future__ import annotations

import os

import jax

ENV = "JPOSE_COMPILATION_CACHE"
DEFAULT_DIR = os.path.join("~", ".cache", "jpose", "xla")


def cache_dir() -> str | None:
  """The folder the commands cache compiled programs in, or None when turned off."""
  value = os.environ.get(ENV, DEFAULT_DIR)
  if value.strip().lower() in ("", "off", "0", "false", "none"):
    return None
  return os.path.abspath(os.path.expanduser(value))


def enable(path: str | None = None, min_compile_time_s: float = 1.0) -> str | None:
  """Points JAX's persistent cache at `path` (default `cache_dir()`): programs that took
  at least `min_compile_time_s` to compile are stored there and loaded on the next run.
  Returns the folder, or None when the cache is off."""
  path = path or cache_dir()
  if path is None:
    return None
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    print(f"jpose: compilation cache off: cannot create {path} ({e.strerror}); "
          f"set ${ENV} to a writable folder or to 'off'")
    return None
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_s)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return path
