"""Trivial baselines a 3D lifter must beat, scored like any model.

  mean_pose: the mean root-relative training pose, predicted for every frame;
  constant_depth: the 2D pose lifted at zero relative depth (weak-perspective units
    scaled back to mm like the VAE lifter's output).

  python -m jpose.evaluate.baselines --config configs/vae_unsupervised.py \\
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
"""

from __future__ import annotations

import json

from absl import app
from absl import flags
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from jpose.data import pipeline
from jpose.evaluate import report
from jpose.geometry import weak_perspective as wp
from jpose.metrics import accumulator
from jpose.metrics import pose as pose_metrics


def _score(predict, data: pipeline.SequenceSet, stats, batch_size: int = 8192):
  acc = accumulator.ErrorAccumulator()
  for batch in pipeline.make_dataset(data, stats, batch_size, train=False, shard_index=0,
                                     shard_count=1):
    target = jnp.asarray(batch["pose_3d"])
    predicted = predict(batch)
    errors = {"mpjpe": pose_metrics.mpjpe(predicted, target),
              "p_mpjpe": pose_metrics.p_mpjpe(predicted, target),
              "n_mpjpe": pose_metrics.n_mpjpe(predicted, target)}
    seq = batch["seq_index"]
    acc.update({k: np.asarray(v) for k, v in errors.items()}, [data.actions[s] for s in seq],
               [data.subjects[s] for s in seq], valid=batch["valid"])
  return acc


def trivial_baselines(train: pipeline.SequenceSet, test: pipeline.SequenceSet) -> dict:
  stats = pipeline.compute_norm_stats(train)
  mean_pose = jnp.asarray(train.pose_3d.mean(axis=0))

  def constant_depth(batch):
    pose_2d, scale = wp.normalise_2d(jnp.asarray(batch["pose_2d"]),
                                     jnp.asarray(batch["camera_f"]), jnp.asarray(batch["camera_c"]))
    flat = jnp.concatenate([pose_2d, jnp.zeros_like(pose_2d[..., :1])], axis=-1)
    return wp.to_mm(flat, jnp.asarray(batch["root_depth"]), scale)

  return {
      "mean_pose": report.results_dict(_score(
          lambda b: jnp.broadcast_to(mean_pose, b["pose_3d"].shape), test, stats), step=0),
      "constant_depth": report.results_dict(_score(constant_depth, test, stats), step=0),
  }


def main(argv):
  del argv
  c = flags.FLAGS.config
  results = trivial_baselines(pipeline.load_config_split(c, "train"),
                              pipeline.load_config_split(c, c.eval.split))
  for name, r in results.items():
    print(f"{name}: MPJPE {r['protocol1']['action_wise_mean']:.1f} mm, "
          f"P-MPJPE {r['protocol2']['action_wise_mean']:.1f} mm, "
          f"N-MPJPE {r['n_mpjpe']['action_wise_mean']:.1f} mm (action-wise means)")
  if flags.FLAGS.output:
    with open(flags.FLAGS.output, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  # Flags are defined only when run as a program, so importing this module defines none.
  config_flags.DEFINE_config_file("config", None, "Config whose data fields to use.")
  flags.DEFINE_string("output", None, "Optional JSON file for the results.")
  flags.mark_flag_as_required("config")
  app.run(main)
