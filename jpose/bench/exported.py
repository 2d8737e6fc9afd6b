"""Latency of a config's model as `jpose.export` serialises it, deserialised and called as
a user would (`--model exported`)."""

from __future__ import annotations

import time

import jax
import numpy as np

from jpose import export
from jpose.bench import train_step
from jpose.data import pipeline
from jpose.train import registry


def benchmark_exported(config, steps: int) -> dict:
  """Latency of the config's model as `jpose.export` serialises it, deserialised and called
  as a user would (random parameters: the time does not depend on their values).

  Frame-wise models: one frame, and a batch of 1,024 frames. The TCN: one receptive-field
  window (its latency for a live feed, which must wait for that many frames), and a
  2,430-frame clip per frame.
  """
  trainer = registry.build(config, pipeline.compute_norm_stats(
      train_step.random_sequences(5_000, 500), config.data.keypoints, config.data.frame_2d),
      5_000)
  state = jax.jit(trainer.init)(jax.random.key(config.seed))
  t0 = time.perf_counter()
  exported = export.export_model(config, trainer, state, platforms=(jax.default_backend(),))
  lift = jax.export.deserialize(exported.serialize()).call
  export_s = time.perf_counter() - t0
  rng = np.random.default_rng(0)
  field = export.receptive_field(config)

  def timed(shape) -> float:
    keypoints = np.concatenate([rng.uniform(200, 800, shape + (17, 2)),
                                np.full(shape + (17, 1), 0.9)], -1).astype(np.float32)
    for _ in range(3):
      jax.block_until_ready(lift(keypoints))
    times = []
    for _ in range(steps):
      t = time.perf_counter()
      jax.block_until_ready(lift(keypoints))
      times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3

  result = {"receptive_field": field, "export_s": export_s,
            "serialized_mb": len(exported.serialize()) / 1e6,
            "device_kind": jax.devices()[0].device_kind}
  if config.train.trainer == "temporal":
    result["window_ms"] = timed((1, field))
    clip = timed((1, 2_430))
    result["clip_ms_per_frame"] = clip / 2_430
  else:
    result["frame_ms"] = timed((1,))
    result["batch_1024_ms_per_frame"] = timed((1_024,)) / 1_024
  return result
