"""Runs a trainer's `predict` over a split and accumulates per-pose errors by action.

The eval step is compiled once; batches are sharded on the data axis like training, and
per-pose errors are gathered to every process before accumulation.
"""

from __future__ import annotations

import jax
from jax.experimental import multihost_utils
import numpy as np
import tqdm

from jpose.data import pipeline
from jpose.metrics import accumulator
from jpose.metrics import pose as pose_metrics
from jpose.train import sharding


def make_eval_step(trainer, mesh):
  def eval_step(state, batch):
    predicted = trainer.predict(state, batch)
    target = batch["pose_3d"]
    return {"mpjpe": pose_metrics.mpjpe(predicted, target),
            "p_mpjpe": pose_metrics.p_mpjpe(predicted, target),
            "n_mpjpe": pose_metrics.n_mpjpe(predicted, target)}
  return jax.jit(eval_step, out_shardings=sharding.batch_sharding(mesh))


def evaluate(trainer, state, data: pipeline.SequenceSet, stats: pipeline.NormStats,
             batch_size: int, mesh, eval_step=None, frame_stride: int = 1,
             progress: bool = True) -> accumulator.ErrorAccumulator:
  eval_step = eval_step or make_eval_step(trainer, mesh)
  local_batch = sharding.per_process_batch(batch_size)
  dataset = pipeline.make_dataset(data, stats, local_batch, train=False,
                                  frame_stride=frame_stride)
  acc = accumulator.ErrorAccumulator()
  for batch in tqdm.tqdm(dataset, desc="eval", disable=not progress or jax.process_index() > 0,
                         leave=False):
    device_batch = sharding.to_global(mesh, {k: batch[k] for k in trainer.batch_keys})
    errors = eval_step(state, device_batch)
    errors = multihost_utils.process_allgather(errors, tiled=True)
    seq = multihost_utils.process_allgather(batch["seq_index"], tiled=True)
    valid = multihost_utils.process_allgather(batch["valid"], tiled=True)
    acc.update({k: np.asarray(v) for k, v in errors.items()},
               [data.actions[s] for s in seq], [data.subjects[s] for s in seq], valid=valid)
  return acc


def sample_predictions(trainer, state, data: pipeline.SequenceSet, stats: pipeline.NormStats,
                       num_examples: int = 3) -> dict[str, np.ndarray]:
  """Predictions for a few frames spread over the split, for figures and notebooks."""
  dataset = pipeline.make_dataset(data, stats, num_examples, train=False,
                                  frame_stride=max(1, data.num_frames // num_examples),
                                  shard_index=0, shard_count=1)
  batch = dataset[0]
  inputs = {k: jax.numpy.asarray(batch[k]) for k in trainer.batch_keys}
  predicted = np.asarray(jax.jit(trainer.predict)(jax.device_get(state), inputs))
  titles = [f"{data.subjects[s]} {data.actions[s]} #{f}"
            for s, f in zip(batch["seq_index"], batch["frame_index"])]
  return {"pose_2d": batch["pose_2d"], "pose_3d": batch["pose_3d"], "predicted": predicted,
          "titles": titles}
