"""orbax checkpoints in <workdir>/checkpoints: the train state plus the input iterator's
position, so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """The run's CheckpointManager. `read_only` (evaluation of another run's workdir) neither
  creates, deletes nor cleans anything: a training run may be writing there."""

  def __init__(self, workdir: str, max_to_keep: int, read_only: bool = False):
    self.directory = os.path.abspath(os.path.join(workdir, "checkpoints"))
    self.read_only = read_only
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                             cleanup_tmp_directories=not read_only,
                                             read_only=read_only))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, state, data_state: dict[str, Any] | None, force: bool = True) -> None:
    if self.read_only:
      raise PermissionError(f"{self.directory} was opened read-only (evaluation)")
    step = int(jax.device_get(state.step))
    if step in self.manager.all_steps():
      return
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(data_state or {})), force=force)

  def restore(self, abstract_state, step: int | None = None):
    """Returns (state, data_state) of `step` (default: the latest)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
