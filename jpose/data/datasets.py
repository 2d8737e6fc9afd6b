"""Registry of jpose datasets and the one place that builds and opens them.

A config names its dataset by key (`config.data.name`); `builders()` resolves the key.
A key may name a builder config after a slash ('h36m_images/quick').
Building never destroys a dataset that is already there: a rebuild is written to a
scratch folder and swapped in only once it is complete. A build killed before its
clean-up leaves that hidden `.<name>-build-*` folder; the next build of the same dataset
removes it once its builder process is gone (or, from another host, after a day).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import socket
import tempfile
import time

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import tensorflow_datasets as tfds

from jpose.body import smpl
from jpose.formats import mosh_files

ENTRY_POINTS = "jpose.datasets"  # the group under which builders register (pyproject.toml)


@functools.cache
def builders() -> dict[str, type[tfds.core.GeneratorBasedBuilder]]:
  """Every registered dataset builder by key. Builders register themselves as entry points
  of the group `jpose.datasets` (jpose's own in its pyproject.toml), so this layer never
  imports `tfds_builders`; an installed package of one's own can add a dataset the same way.
  A source checkout on PYTHONPATH, not installed, reads the same table from its
  pyproject.toml.
  """
  found = {e.name: e for e in importlib.metadata.entry_points(group=ENTRY_POINTS)}
  if not found:
    found = {e.name: e for e in _source_checkout_entry_points()}
  if not found:
    raise RuntimeError(
        f"no dataset builders are registered (entry point group '{ENTRY_POINTS}'): jpose "
        "is not installed in this Python. Run `pip install -e .` in the jpose checkout.")
  return {name: entry.load() for name, entry in sorted(found.items())}


def _source_checkout_entry_points() -> list[importlib.metadata.EntryPoint]:
  pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__)))), "pyproject.toml")
  try:
    import tomllib  # pylint: disable=g-import-not-at-top  (Python >= 3.11)
    with open(pyproject, "rb") as f:
      table = tomllib.load(f)["project"]["entry-points"][ENTRY_POINTS]
  except (ImportError, OSError, KeyError):
    return []
  return [importlib.metadata.EntryPoint(name, value, ENTRY_POINTS)
          for name, value in table.items()]


def names() -> list[str]:
  return sorted(builders())


def needs_manual_dir(name: str) -> bool:
  """Whether dataset `name` is built from local files (`manual_dir`), not generated."""
  return bool(_builder_class(name).MANUAL_DOWNLOAD_INSTRUCTIONS)


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _builder_class(name: str):
  key, known = name.split("/")[0], builders()
  if key not in known:
    raise KeyError(f"data.name: unknown dataset '{name}'; known: {sorted(known)}")
  return known[key]


def get_builder(name: str, data_dir: str | None = None) -> tfds.core.GeneratorBasedBuilder:
  """The builder for key `name`, or `name/config` for a builder with several configs."""
  kwargs = {}
  if "/" in name:
    cls, config = _builder_class(name), name.split("/", 1)[1]
    known = [c.name for c in cls.BUILDER_CONFIGS]
    if config not in known:
      raise KeyError(f"data.name: dataset '{name}' has no config '{config}'; known: {known}")
    kwargs["config"] = config
  return _builder_class(name)(data_dir=data_dir or default_data_dir(),
                              file_format="array_record", **kwargs)


def is_built(name: str, data_dir: str | None = None) -> bool:
  builder = get_builder(name, data_dir)
  return os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def prepare(name: str, data_dir: str | None = None, manual_dir: str | None = None,
            overwrite: bool = False) -> tfds.core.GeneratorBasedBuilder:
  """Builds dataset `name` into data_dir (a no-op if built, unless `overwrite`).

  With several JAX processes, process 0 builds while the others wait at a barrier (they
  share data_dir, and simultaneous builds would swap folders under each other's feet).
  """
  if jax.process_count() == 1:
    return _prepare_here(name, data_dir, manual_dir, overwrite)
  if jax.process_index() == 0:
    builder = _prepare_here(name, data_dir, manual_dir, overwrite)
  else:
    # Poll rather than wait in a collective: a build takes minutes, longer than the
    # collectives' connection timeout. data_dir must be storage every process sees.
    waited = 0.0
    while not is_built(name, data_dir):
      if waited % 60 == 0:
        logging.info("process %d: waiting for process 0 to build dataset '%s' in %s",
                     jax.process_index(), name, data_dir or default_data_dir())
      time.sleep(2.0)
      waited += 2.0
    builder = get_builder(name, data_dir)
  multihost_utils.sync_global_devices(f"jpose: dataset {name} prepared")
  return builder


SCRATCH_OWNER = "OWNER"  # in a build's scratch folder: "<host> <pid>" of the build.
STALE_SCRATCH_HOURS = 24.0


def _newest_mtime(folder: str) -> float:
  newest = os.path.getmtime(folder)
  for root, dirs, files in os.walk(folder):
    for entry in dirs + files:
      try:
        newest = max(newest, os.path.getmtime(os.path.join(root, entry)))
      except OSError:  # removed meanwhile
        pass
  return newest


def _scratch_is_stale(folder: str) -> bool:
  """Whether a build's scratch folder is left over from a build that died (SIGKILL, a
  preempted machine), rather than in use by a build running now.

  A build on this host that wrote its owner file is stale once its process is gone. A
  build on another host sharing data_dir (or one from before owner files, or one that
  died between creating the folder and writing the file, or whose pid a new process
  took) cannot be asked: it counts as stale once nothing in its folder changed for
  STALE_SCRATCH_HOURS, far longer than any build writes nothing (TFDS writes its shards
  as it goes).
  """
  try:
    with open(os.path.join(folder, SCRATCH_OWNER)) as f:
      host, pid = f.read().split()
    if host == socket.gethostname():
      os.kill(int(pid), 0)  # raises ProcessLookupError once the build's process is gone.
  except ProcessLookupError:
    return True
  except (OSError, ValueError):  # no or unreadable owner file; alive, another user's
    pass
  # A live process, perhaps the dead build's pid reused, or a folder no owner vouches for.
  return time.time() - _newest_mtime(folder) > STALE_SCRATCH_HOURS * 3600


def remove_stale_scratch(data_dir: str, prefix: str) -> list[str]:
  """Removes the scratch folders `<data_dir>/<prefix>*` of earlier builds of the same
  dataset that were killed before their own clean-up ran; returns their paths. Folders
  that a live build may be using are left alone (see _scratch_is_stale)."""
  removed = []
  for entry in sorted(os.listdir(data_dir)):
    folder = os.path.join(data_dir, entry)
    if entry.startswith(prefix) and os.path.isdir(folder) and _scratch_is_stale(folder):
      shutil.rmtree(folder, ignore_errors=True)
      logging.warning("removed %s, the scratch folder of an interrupted build", folder)
      removed.append(folder)
  return removed


def _prepare_here(name: str, data_dir: str | None, manual_dir: str | None,
                  overwrite: bool) -> tfds.core.GeneratorBasedBuilder:
  data_dir = data_dir or default_data_dir()
  if is_built(name, data_dir) and not overwrite:
    return get_builder(name, data_dir)
  if needs_manual_dir(name):
    if not manual_dir:
      raise ValueError(f"dataset '{name}' is built from local files: pass manual_dir "
                       f"(config.data.manual_dir or --manual_dir).\n"
                       f"{_builder_class(name).MANUAL_DOWNLOAD_INSTRUCTIONS}")
    if not os.path.isdir(manual_dir):
      raise FileNotFoundError(f"manual_dir '{manual_dir}' for dataset '{name}' is not a folder")
  os.makedirs(data_dir, exist_ok=True)
  # Build in a scratch data_dir beside the target so a failed build leaves any existing
  # dataset untouched; the finished version folder is then moved into place.
  prefix = f".{name.replace('/', '-')}-build-"
  remove_stale_scratch(data_dir, prefix)
  scratch = tempfile.mkdtemp(prefix=prefix, dir=data_dir)
  with open(os.path.join(scratch, SCRATCH_OWNER), "w") as f:
    f.write(f"{socket.gethostname()} {os.getpid()}\n")
  try:
    builder = get_builder(name, scratch)
    download_config = tfds.download.DownloadConfig(
        manual_dir=manual_dir, download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS)
    # tfds' own lines say "Downloading and preparing dataset Unknown size" when nothing is
    # downloaded; jpose says what it builds, where, and from what.
    builder._log_download_bytes = lambda: None  # pylint: disable=protected-access
    builder._log_download_done = lambda: None  # pylint: disable=protected-access
    source = (f"the files in {manual_dir}" if manual_dir
              else "jpose's own generator (nothing is downloaded)")
    print(f"jpose: building dataset {name} in {data_dir} from {source}", flush=True)
    builder.download_and_prepare(download_config=download_config)
    final = get_builder(name, data_dir)
    target = final.data_dir
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.exists(target):
      old = target + ".old"
      shutil.rmtree(old, ignore_errors=True)
      os.replace(target, old)
      os.replace(builder.data_dir, target)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(builder.data_dir, target)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  metadata = get_builder(name, data_dir).info.metadata
  for key in ("missing_files", "missing_detections", "unreadable_files"):
    for path in (metadata or {}).get(key, []):
      logging.warning("%s: %s: %s", name, key, path)
  return get_builder(name, data_dir)


def load_pose_samples(source: str, data_dir: str | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
  """Pose/shape samples for a trainer -> (poses (N, 24, 3), betas (N, 10)) float32.

  source: a sample file or a folder of them (`formats.mosh_files.load_samples`), or a
    dataset key such as 'mosh' (built in data_dir if needed, read whole, in record order).
  """
  if os.path.exists(source):
    return mosh_files.load_samples(source)
  if source.split("/")[0] not in builders():
    raise mosh_files.MoshFileError(source, "is neither a file, a folder, nor a registered "
                                   f"dataset (known: {names()})")
  builder = prepare(source, data_dir)
  features = builder.info.features
  if "pose" not in features or "betas" not in features or "train" not in builder.info.splits:
    raise ValueError(f"dataset '{source}' at {builder.data_dir} is not a pose/shape sample "
                     "dataset (needs features 'pose', 'betas' and a 'train' split)")
  records = list(builder.as_data_source(split="train"))
  if not records:
    raise ValueError(f"dataset '{source}' at {builder.data_dir} has no records")
  poses = np.stack([r["pose"] for r in records]).astype(np.float32)
  betas = np.stack([r["betas"] for r in records]).astype(np.float32)
  return poses.reshape(-1, smpl.NUM_JOINTS, 3), betas
