"""`python -m jpose.keypoint_robustness`: how trained frame-wise lifters fare on
detector-like COCO-17 keypoints (`jpose.evaluate.keypoint_robustness`), each run loaded
from its workdir.

  python -m jpose.keypoint_robustness --data_dir /tmp/tfds --workdir /tmp/martinez_coco \
      --workdir /tmp/martinez_h36m --frame_stride 5
"""

from __future__ import annotations

import json

from absl import app
from absl import flags
from absl import logging
import numpy as np

from jpose import cli
from jpose.data import pipeline
from jpose.evaluate import keypoint_robustness
from jpose.inference import lifting
from jpose.train import loop

FLAGS = flags.FLAGS


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
  conditions = keypoint_robustness.coco_conditions(test.pose_2d[frames], FLAGS.noise_px,
                                                   FLAGS.missed)
  results = {}
  for workdir in FLAGS.workdir:
    config, trainer, state = loop.load_trained(workdir)
    if config.train.trainer == "temporal":
      raise app.UsageError(f"{workdir}: a TCN; this scores frame-wise lifters")
    lift = lifting.lift_function(config, trainer, score_threshold=0.5)
    results[workdir] = keypoint_robustness.evaluate(lift, state, conditions,
                                                    test.pose_3d[frames])
    print(workdir, json.dumps(results[workdir]), flush=True)
  print(json.dumps(results))


def run() -> None:
  define_flags()
  cli.run("jpose.keypoint_robustness", main, required=("workdir",))


if __name__ == "__main__":
  run()
