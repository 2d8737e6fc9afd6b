"""How trained lifters fare on detector-like COCO-17 keypoints: Human3.6M's test 2D mapped
to COCO's layout, then jittered and with joints missed, lifted through `jpose.infer`'s
path (`lifting.lift_function`) and scored against the ground truth. The command that
loads trained runs and prints their scores is `jpose.keypoint_robustness`:

  python -m jpose.keypoint_robustness --workdir /tmp/martinez_coco \
      --workdir /tmp/martinez_h36m --frame_stride 5

COCO's eyes and ears have no Human3.6M counterpart, so they are absent; "h36m"-layout
models get the four joints COCO lacks derived (`skeleton.h36m_from_coco`).
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from jpose.geometry import skeleton
from jpose.metrics import pose as pose_metrics


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


def evaluate(lift: Callable, state, conditions: dict, target: np.ndarray,
             batch_size: int = 8192) -> dict[str, dict[str, float]]:
  """Frame-wise MPJPE and P-MPJPE (mm) under each condition of `lift`: (state, (B, 17, 3)
  COCO-17 keypoints) -> (B, 17, 3) mm, e.g. `lifting.lift_function` of a frame-wise lifter
  that the caller loaded (`python -m jpose.keypoint_robustness`)."""
  lift = jax.jit(lift)
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



if __name__ == "__main__":
  # The command's first name, `python -m jpose.evaluate.keypoint_robustness`, keeps working:
  # run as a script, this module runs the command module (jpose.keypoint_robustness, on the
  # commands floor, since loading trained runs takes jpose.train). Importing this module
  # never imports the command or train/.
  import runpy  # pylint: disable=g-import-not-at-top
  runpy.run_module("jpose.keypoint_robustness", run_name="__main__", alter_sys=True)
