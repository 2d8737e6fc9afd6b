"""orbax checkpoints in <workdir>/checkpoints: the train state plus the input iterator's
position, so a resumed run sees the batches an uninterrupted one would.

A step that cannot be read (truncated or zeroed file, missing metadata, empty folder) is
skipped with a one-line warning for the next newest readable one; a training run moves
it to <workdir>/damaged_checkpoints/ so that its step can be written again. Nothing is
ever deleted here. A save that failed in orbax's background thread raises CheckpointError
at the next check_saved() (every dispatch), naming its step folder and cause.
"""

from __future__ import annotations

import contextlib
import glob
import logging as logging_std
import os
import time
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp

DAMAGED = "damaged_checkpoints"  # beside checkpoints/: unreadable steps set aside.
# Files without which a step cannot be read, checked first for a clearer message than
# orbax's ("pytree structure error", "Item 'data' was not found").
_REQUIRED = ("state/_METADATA", "data/metadata")


class CheckpointError(OSError):
  """No checkpoint could be read, or a save failed; the message is one line."""


class _OrbaxWarnings(logging_std.Filter):
  """Drops orbax's own warnings while a step is tried ('Metadata file does not exist',
  several times a step): the one line that restore() writes says it better."""

  def filter(self, record: logging_std.LogRecord) -> bool:
    return record.levelno > logging_std.WARNING or f"{os.sep}orbax{os.sep}" not in record.pathname


@contextlib.contextmanager
def _quiet_orbax():
  logger, quiet = logging_std.getLogger("absl"), _OrbaxWarnings()
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def _cause(error: BaseException) -> str:
  """The first line of the innermost exception: orbax wraps tensorstore's real cause
  (e.g. 'OUT_OF_RANGE ... byte range') in several layers of generic messages."""
  while (error.__cause__ or error.__context__) is not None:
    error = error.__cause__ or error.__context__
  text = str(error).strip().strip("'\"").splitlines()
  line = text[0] if text else ""
  if len(line) > 400:  # tensorstore puts the path first and the OS's reason last.
    line = f"{line[:200]} ... {line[-200:]}"
  return f"{type(error).__name__}: {line}"


class Checkpointer:
  """The run's CheckpointManager. `read_only` (evaluation of another run's workdir) neither
  creates, deletes nor cleans anything: a training run may be writing there."""

  def __init__(self, workdir: str, max_to_keep: int, read_only: bool = False):
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    self.read_only = read_only
    with _quiet_orbax():  # it reads every step's metadata, a damaged one's too.
      self.manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                               cleanup_tmp_directories=not read_only,
                                               read_only=read_only))
    self._saving: int | None = None  # the step of the save that may still be in flight.

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, state, data_state: dict[str, Any] | None, force: bool = True) -> None:
    if self.read_only:
      raise PermissionError(f"{self.directory} was opened read-only (evaluation)")
    if self._saving is not None:  # orbax waits for it anyway; its failure is its own.
      try:
        self.manager.wait_until_finished()
      except Exception as e:  # pylint: disable=broad-except
        self._failed(e)
      self._saving = None
    step = int(jax.device_get(state.step))
    if step in self.manager.all_steps():
      return
    self._saving = step
    try:
      self.manager.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(state),
          data=ocp.args.JsonSave(data_state or {})), force=force)
    except Exception as e:  # pylint: disable=broad-except
      self._failed(e)

  def check_saved(self) -> None:
    """Raises CheckpointError if the save in flight (orbax writes in a background thread)
    failed: the loop calls this every dispatch, so a full disk stops the run at once."""
    if self._saving is None:
      return
    try:
      self.manager.check_for_errors()
      if not self.manager.is_saving_in_progress():
        # Returns at once (or joins a save about to end); raises what it raised.
        self.manager.wait_until_finished()
        # Only the finished step's folder shows that the save got going at all and ended.
        if os.path.isdir(os.path.join(self.directory, str(self._saving))):
          self._saving = None
    except Exception as e:  # pylint: disable=broad-except
      self._failed(e)

  def _failed(self, error: Exception):
    step, self._saving = self._saving, None
    path = os.path.join(self.directory, str(step))
    # The failed save's partial folder stays: orbax's writer threads may still be landing
    # files in it (removing it here raced them), and the next start of a run in this
    # workdir removes it (cleanup_tmp_directories) before it saves anything.
    partial = glob.glob(f"{path}.orbax-checkpoint-tmp*")
    latest = [s for s in self.manager.all_steps() if s != step]
    kept = (f"the last good checkpoint (step {max(latest)}) is kept" if latest
            else "no earlier checkpoint exists")
    raise CheckpointError(
        f"saving checkpoint {path} failed ({_cause(error)}); "
        f"{'its partial folder is left for the next start to remove; ' if partial else ''}"
        f"{kept}") from error

  def _restore_step(self, abstract_state, step: int):
    folder = os.path.join(self.directory, str(step))
    missing = [f for f in _REQUIRED if not os.path.exists(os.path.join(folder, f))]
    if missing:
      raise FileNotFoundError(f"{', '.join(missing)} missing")
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]

  def restore(self, abstract_state, step: int | None = None):
    """Returns (state, data_state) of `step`, or else of the newest readable step.

    A step that fails to read is skipped with a warning, unless it vanished meanwhile
    (a training run's max_to_keep removed it under an evaluation): then the newest step
    is tried instead. With no readable step, CheckpointError names the folder.
    """
    if step is not None:
      return self._restore_step(abstract_state, step)
    with _quiet_orbax():
      return self._restore_newest(abstract_state)

  def _restore_newest(self, abstract_state):
    damaged: dict[int, str] = {}
    for _ in range(100):  # a live run can remove a step per read; it cannot go on forever.
      self.manager.reload()
      steps = [s for s in sorted(self.manager.all_steps(), reverse=True) if s not in damaged]
      if not steps:
        break
      step = steps[0]
      try:
        restored = self._restore_step(abstract_state, step)
      except Exception as e:  # pylint: disable=broad-except
        self.manager.reload()
        if step not in self.manager.all_steps():
          logging.warning("checkpoint step %d in %s was removed while being read (by the "
                          "training run's max_to_keep?); trying the newest step", step,
                          self.directory)
          continue
        damaged[step] = _cause(e)
        warning = (f"checkpoint {os.path.join(self.directory, str(step))} is unreadable "
                   f"({damaged[step]}); trying an older step")
        logging.warning(warning)
        continue
      self._set_aside(damaged)
      return restored
    if not damaged:
      raise CheckpointError(f"no checkpoint in {self.directory}")
    causes = "; ".join(f"step {s}: {c}" for s, c in sorted(damaged.items(), reverse=True))
    raise CheckpointError(f"no readable checkpoint in {self.directory} ({causes})")

  def _set_aside(self, damaged: dict[int, str]) -> None:
    """Moves unreadable steps newer than the restored one out of checkpoints/ (a training
    run would otherwise never rewrite their step, and a later resume would read them
    again). Read-only users leave them where they are."""
    if self.read_only or not damaged:
      return
    if jax.process_index() == 0:
      aside = os.path.join(self.workdir, DAMAGED)
      os.makedirs(aside, exist_ok=True)
      for step in damaged:
        target = os.path.join(aside, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(os.path.join(self.directory, str(step)), target)
        logging.warning("moved the unreadable checkpoint step %d to %s", step, target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("jpose: damaged checkpoints set aside")
    self.manager.reload()

  def wait(self) -> None:
    try:
      self.manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      if self._saving is None:
        raise
      self._failed(e)
    self.check_saved()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self.manager.close()
