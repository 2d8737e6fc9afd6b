"""Metric writers: TensorBoard event files in the workdir plus the console.

clu's `metric_writers` package imports TensorFlow at import time, and jpose runs without
TensorFlow, so this module writes the same event files with the `tensorboard` package's
own protobufs. The interface is clu's (write_scalars / write_hparams / flush / close).
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping

from absl import logging
import jax
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto import summary_pb2
from tensorboard.compat.proto import tensor_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


class MetricWriter:
  """Writes scalars to <logdir>/events.out.tfevents.* and logs them; process 0 only."""

  def __init__(self, logdir: str, console: bool = True):
    self.active = jax.process_index() == 0
    self.console = console
    self._events = EventFileWriter(logdir) if self.active else None

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if not self.active:
      return
    values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in scalars.items()]
    self._events.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                           summary=summary_pb2.Summary(value=values)))
    if self.console:
      logging.info("[%d] %s", step, ", ".join(f"{k}={float(v):.5g}" for k, v in scalars.items()))

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    if not self.active:
      return
    text = "\n".join(f"{k} = {v}" for k, v in sorted(hparams.items()))
    tensor = tensor_pb2.TensorProto(dtype=7, string_val=[text.encode()])  # DT_STRING
    plugin = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    value = summary_pb2.Summary.Value(tag="config", tensor=tensor, metadata=plugin)
    self._events.add_event(event_pb2.Event(wall_time=time.time(), step=0,
                                           summary=summary_pb2.Summary(value=[value])))

  def flush(self) -> None:
    if self.active:
      self._events.flush()

  def close(self) -> None:
    if self.active:
      self._events.close()


def create_default_writer(workdir: str) -> MetricWriter:
  return MetricWriter(os.path.join(workdir, "tensorboard"))
