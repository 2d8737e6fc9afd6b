"""How trained lifters fare on detector-like COCO-17 keypoints: Human3.6M's test 2D mapped
to COCO's layout, then jittered and with joints missed, lifted through `jpose.infer`'s
path (`lifting.lift_function`) and scored against the ground truth.

  python -m jpose.evaluate.keypoint_robustness --workdir /tmp/martinez_coco \
      --workdir /tmp/martinez_h36m --frame_stride 5

COCO's eyes and ears have no Human3.6M counterpart, so they are absent; "h36m"-layout
models get the four joints COCO lacks derived (`skeleton.h36m_from_coco`).
"""

from __future__ import annotations

import json

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np

from jpose.data import pipeline
from jpose.evaluate import lifting
from jpose.geometry import skeleton
from jpose.metrics import pose as pose_metrics
from jpose.train import loop

FLAGS = flags.FLAGS


def coco_conditions(pose_2d: np.ndarray, noise_px: float, dropped: float, seed: int = 0
                    ) -> dict[str, np.ndarray]:
  """(N, 17, 2) Human3.6M-17 pixels -> COCO-17 (x, y, score) keypoints: as they are, with
  Gaussian noise of `noise_px`, and with that noise and a `dropped` share of joints at
  score 0 (a detector's misses)."""
  coco = np.zeros((len(pose_2d), 17, 3), np.float32)
  for h36m_joint, coco_joint in enumerate(skeleton.COCO_17_TO_H36M_17):
    if coco_joint >= 0:
      coco[:, coco_joint, :2], coco[:, coco_joint, 2] = pose_2d[:, h36m_joint], 1.0
  rng = np.random.default_rng(seed)
  noisy = coco.copy()
  noisy[..., :2] += rng.normal(0.0, noise_px, noisy[..., :2].shape)
  missed = noisy.copy()
  missed[..., 2] *= rng.random(missed.shape[:2]) >= dropped
  return {"clean": coco, f"noise {noise_px:g} px": noisy,
          f"noise {noise_px:g} px, {100 * dropped:g}% missed": missed}


def evaluate(config: ml_collections.ConfigDict, trainer, state, conditions: dict,
             target: np.ndarray, batch_size: int = 8192) -> dict[str, dict[str, float]]:
  """Frame-wise MPJPE and P-MPJPE (mm) of a frame-wise lifter under each condition."""
  lift = jax.jit(lifting.lift_function(config, trainer, score_threshold=0.5))
  out = {}
  for name, keypoints in conditions.items():
    p1, p2 = [], []
    for start in range(0, len(keypoints), batch_size):
      predicted = lift(state, keypoints[start:start + batch_size])
      p1.append(np.asarray(pose_metrics.mpjpe(predicted, target[start:start + batch_size])))
      p2.append(np.asarray(pose_metrics.p_mpjpe(predicted, target[start:start + batch_size])))
    out[name] = {"mpjpe": float(np.concatenate(p1).mean()),
                 "p_mpjpe": float(np.concatenate(p2).mean())}
  return out


def define_flags() -> None:
  flags.DEFINE_multi_string("workdir", None, "Trained frame-wise lifters (repeat the flag).")
  flags.DEFINE_string("data_dir", None, "tfds folder with the built h36m dataset.")
  flags.DEFINE_integer("frame_stride", 5, "Every n-th test frame.")
  flags.DEFINE_float("noise_px", 5.0, "Gaussian keypoint noise, pixels.")
  flags.DEFINE_float("missed", 0.1, "Share of joints a detector misses.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's per-checkpoint INFO lines
  test = pipeline.load_split("h36m", "test", data_dir=FLAGS.data_dir)
  frames = np.arange(test.num_frames)[::FLAGS.frame_stride]
  conditions = coco_conditions(test.pose_2d[frames], FLAGS.noise_px, FLAGS.missed)
  results = {}
  for workdir in FLAGS.workdir:
    config, trainer, state = loop.load_trained(workdir)
    if config.train.trainer == "temporal":
      raise app.UsageError(f"{workdir}: a TCN; this scores frame-wise lifters")
    results[workdir] = evaluate(config, trainer, state, conditions, test.pose_3d[frames])
    print(workdir, json.dumps(results[workdir]), flush=True)
  print(json.dumps(results))


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
