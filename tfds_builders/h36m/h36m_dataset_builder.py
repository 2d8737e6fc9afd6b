"""Human3.6M as tfds array_record: one record per (subject, action, camera) sequence.

Reads the Martinez et al. 2017 layout from `manual_dir` (see MANUAL_DOWNLOAD_INSTRUCTIONS).
Every subject folder and every sequence's files must be there, except the six files that
the public release lacks (`h36m_files.KNOWN_ABSENT_*`): those are skipped, logged, and
listed in the dataset's metadata (`missing_files`, `missing_detections`). Anything else
missing, corrupt or misshapen stops the build with an error that names it, so an
incomplete folder is never cached as a finished dataset.

The (subject, action) files are read and projected in a pool of processes, one per core
unless $JPOSE_PREPARE_WORKERS says otherwise (`jpose.prepare --workers`), always on the
CPU: the records hold the same values, bit for bit and in the same order, for any number
of workers and on any machine.
"""

from __future__ import annotations

import collections
from concurrent import futures
import multiprocessing
import os

from absl import logging
import jax
import numpy as np
import tensorflow_datasets as tfds

from jpose.formats import h36m_files
from jpose.formats import records

# Worker processes for reading and projecting; unset or empty means os.cpu_count().
WORKERS_ENV = "JPOSE_PREPARE_WORKERS"


def num_workers() -> int:
  value = os.environ.get(WORKERS_ENV, "").strip()
  if not value:
    return os.cpu_count() or 1
  try:
    workers = int(value)
  except ValueError:
    workers = 0
  if workers < 1:
    raise ValueError(f"${WORKERS_ENV}: '{value}' is not a positive number of workers")
  return workers


class Builder(tfds.core.GeneratorBasedBuilder):
  """Human3.6M 3D poses, cameras and Stacked Hourglass detections (17 joints)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: 17 joints, GT and Stacked Hourglass 2D."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Human3.6M is licensed (http://vision.imar.ro/human3.6m, research use only); register
  there and accept the licence. Then get `h36m.zip` as released with Martinez et al. 2017
  ("A simple yet effective baseline for 3d human pose estimation", see the README of
  github.com/una-dinosauria/3d-pose-baseline) and unzip it. Point `manual_dir` at the
  folder that holds `cameras.h5` and `S1 ... S11/`, each with `MyPoses/3D_positions/*.h5`
  and `StackedHourglass/*.h5`.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=records.features(),
        metadata=tfds.core.MetadataDict(),
        homepage="http://vision.imar.ro/human3.6m",
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    cameras = h36m_files.read_cameras(os.path.join(root, "cameras.h5"))
    plan, missing_files, missing_detections = self._plan(root)
    for path in missing_files:
      logging.warning("h36m: 3D file absent from the public release, sequence skipped: %s",
                      path)
    for path in missing_detections:
      logging.warning("h36m: detection file absent from the public release, pose_2d_sh is "
                      "NaN: %s", path)
    self.info.metadata["missing_files"] = missing_files
    self.info.metadata["missing_detections"] = missing_detections
    splits = {}
    for split, subjects in (("train", h36m_files.TRAIN_SUBJECTS),
                            ("test", h36m_files.TEST_SUBJECTS)):
      split_plan = [item for item in plan if item[0] in subjects]
      if split_plan:
        splits[split] = self._generate_examples(root, split_plan, cameras)
    if not splits:
      raise h36m_files.H36mFileError(root, "no subject folder (S1 ... S11) holds any 3D pose file")
    return splits

  def _plan(self, root: str):
    """Lists the (subject, action) pairs to build and the known-absent source files."""
    plan, missing_files, missing_detections = [], [], []
    for subject in h36m_files.SUBJECTS:
      folder = os.path.join(root, f"S{subject}")
      if not os.path.isdir(folder):
        raise h36m_files.H36mFileError(
            folder, "subject folder not found; Human3.6M needs all of "
            + ", ".join(f"S{s}" for s in h36m_files.SUBJECTS))
      for action in h36m_files.sequence_names(root, subject):
        path = h36m_files.positions_path(root, subject, action)
        if not os.path.exists(path):
          if (subject, action) not in h36m_files.KNOWN_ABSENT_POSITIONS:
            raise h36m_files.H36mFileError(path, "3D pose file not found (its detections "
                                           "are there, so the sequence exists)")
          missing_files.append(path)
          continue
        plan.append((subject, action))
        for camera_id in h36m_files.CAMERA_IDS:
          det = h36m_files.detections_path(root, subject, action, camera_id)
          if not os.path.exists(det):
            if (subject, action, camera_id) not in h36m_files.KNOWN_ABSENT_DETECTIONS:
              raise h36m_files.H36mFileError(det, "detection file not found")
            missing_detections.append(det)
    return plan, missing_files, missing_detections

  def _download_and_prepare(self, *args, **kwargs):
    # One pool serves both splits, whose generators tfds runs one after the other.
    self._pool_size = num_workers()
    self._pool = None
    if self._pool_size > 1:
      # spawn, not fork: the parent has started JAX's threads, and a forked copy of them
      # can deadlock. Workers compute on the CPU, as the one-worker path does.
      self._pool = futures.ProcessPoolExecutor(
          self._pool_size, mp_context=multiprocessing.get_context("spawn"),
          initializer=_init_worker)
    try:
      return super()._download_and_prepare(*args, **kwargs)
    finally:
      if self._pool is not None:
        # After an error, the sequences not yet started are dropped rather than built.
        self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None

  def _generate_examples(self, root, plan, cameras):
    tasks = [(root, subject, action, {c: cameras[(subject, c)] for c in h36m_files.CAMERA_IDS})
             for subject, action in plan]
    pool = getattr(self, "_pool", None)
    if pool is None:
      for task in tasks:
        yield from _unwrap(_sequence_examples(*task))
      return
    # A window of tasks in flight keeps every worker busy without holding the whole
    # dataset in memory; results are taken in plan order.
    window = collections.deque()
    for task in tasks:
      window.append(pool.submit(_sequence_examples, *task))
      if len(window) >= 2 * self._pool_size:
        yield from _unwrap(window.popleft().result())
    while window:
      yield from _unwrap(window.popleft().result())


def _init_worker():
  jax.config.update("jax_platforms", "cpu")


def _unwrap(result):
  """The examples of one sequence, or its worker's error raised again here."""
  if isinstance(result, _Failure):
    raise h36m_files.H36mFileError(result.path, result.problem)
  return result


class _Failure:
  """A worker's error, as (path, problem): H36mFileError itself does not unpickle."""

  def __init__(self, path: str, problem: str):
    self.path, self.problem = path, problem


def _sequence_examples(root, subject, action, cameras):
  """The 4 (key, record) pairs of one (subject, action), computed on the CPU."""
  try:
    with jax.default_device(jax.devices("cpu")[0]):
      return list(_sequence_records(root, subject, action, cameras))
  except h36m_files.H36mFileError as e:
    return _Failure(e.path, str(e)[len(e.path) + 2:])
  except Exception as e:  # pylint: disable=broad-except
    # Anything else still names the sequence's file, whichever process it ran in.
    return _Failure(h36m_files.positions_path(root, subject, action),
                    f"building its records failed: {type(e).__name__}: {e}")


def _sequence_records(root, subject, action, cameras):
  world = h36m_files.read_positions_3d(h36m_files.positions_path(root, subject, action))
  for camera_id in h36m_files.CAMERA_IDS:
    det_path = h36m_files.detections_path(root, subject, action, camera_id)
    if os.path.exists(det_path):
      detections = h36m_files.read_detections(det_path)
      if detections.shape[0] != world.shape[0]:
        raise h36m_files.H36mFileError(
            det_path, f"has {detections.shape[0]} frames but its 3D file has {world.shape[0]}")
    else:
      detections = np.full(world.shape[:2] + (2,), np.nan, np.float32)
    cam = cameras[camera_id]
    # JAX compiles its eager ops once per shape, and every sequence has its own length:
    # compiling took two thirds of a build. Padded to a power of two, the 205 sequences
    # share a few lengths. Each frame is projected on its own, so the padding leaves its
    # values alone: all 820 records compared equal, bit for bit, to unpadded ones.
    frames = world.shape[0]
    padding = ((0, _padded_length(frames) - frames), (0, 0), (0, 0))
    record = records.sequence_record(
        subject=f"S{subject}", action=action, camera_id=camera_id, fps=h36m_files.FPS,
        camera={n: getattr(cam, n) for n in ("R", "T", "f", "c", "k", "p")},
        pose_3d_world=np.pad(world, padding, mode="edge"),
        pose_2d_sh=np.pad(detections, padding, mode="edge"))
    for name in ("pose_3d", "pose_3d_world", "pose_2d_gt", "pose_2d_sh"):
      record[name] = record[name][:frames]
    yield f"S{subject}/{action}/{camera_id}", record


def _padded_length(frames: int) -> int:
  return max(1024, 1 << (frames - 1).bit_length())
