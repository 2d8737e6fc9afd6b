"""Stage 1 of Kato et al.'s two-stage video model: a trained integral regressor's 2D pose
and joint depth for every frame of every sequence, stored for the TCN
(`jpose.data.stage1`).

  python -m jpose.predict --workdir /tmp/integral_cpu --splits train,test --frame_stride 5
  python -m jpose.main --config configs/tcn27.py --workdir /tmp/tcn27_stage1 \
      --config.data.input_2d=stage1 --config.data.stage1_dir=/tmp/integral_cpu/stage1 \
      --config.data.frame_stride=5 --config.model.input_depth=True ...

Frames are the people rendered at the run's dataset poses, each sequence with its fixed
evaluation look, so every frame renders the same way each time. As in Kato et al.,
the training split's predictions come from a model that saw those frames in training:
they are better than a detector's on unseen video, and the TCN learns from that.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np
import tqdm

from jpose.data import pipeline
from jpose.data import stage1
from jpose.evaluate import evaluator
from jpose.geometry import heatmap
from jpose.geometry import skeleton
from jpose.metrics import pose as pose_metrics
from jpose.train import loop

FLAGS = flags.FLAGS


def predict_split(config: ml_collections.ConfigDict, trainer, state, data, batch_size: int
                  ) -> dict[str, np.ndarray]:
  """Every frame of `data` (a SequenceSet), rendered and predicted: pose_2d (N, 17, 2)
  image pixels, depth (N, 17) root-relative mm, pose_3d (N, 17, 3) root-relative camera
  mm with the true root depth."""

  def step(state, batch):
    images = trainer.render_eval(batch)
    crop = trainer.predict_crops(state, images["image"])
    return {"pose_2d": heatmap.crop_to_image(crop[..., :2], images["crop"]),
            "depth": crop[..., 2],
            "pose_3d": heatmap.crop_to_camera(crop, images["crop"], batch["root_depth"],
                                              batch["camera_f"], batch["camera_c"],
                                              skeleton.ROOT)}
  step = jax.jit(step)
  dataset = pipeline.make_dataset(data, evaluator.host_norm_stats(state), batch_size,
                                  train=False, shard_index=0, shard_count=1)
  out = {"pose_2d": [], "depth": [], "pose_3d": []}
  for batch in tqdm.tqdm(dataset, desc="predict", leave=False):
    predicted = step(state, {k: batch[k] for k in trainer.predict_keys})
    for k in out:
      out[k].append(np.asarray(predicted[k])[batch["valid"]])
  return {k: np.concatenate(v) for k, v in out.items()}


def run(workdir: str, splits: list[str], frame_stride: int = 1, max_sequences: int = 0,
        out_dir: str | None = None, config: ml_collections.ConfigDict | str | None = None,
        batch_size: int | None = None) -> dict[str, dict[str, float]]:
  """The command as a function. Returns each split's stage-1 MPJPE and P-MPJPE (mm)."""
  config, trainer, state = loop.load_trained(workdir, config)
  if config.train.trainer != "integral":
    raise ValueError(f"{workdir}: a '{config.train.trainer}' run; stage-1 predictions come "
                     "from an integral regressor (train.trainer=integral)")
  if trainer.eval_source is not None:
    raise ValueError(f"config.eval.images='{config.eval.images}': jpose.predict renders the "
                     "dataset's frames; predicting recorded video frames is not built yet")
  out_dir = out_dir or os.path.join(workdir, "stage1")
  d = config.data
  errors = {}
  for split in splits:
    data = pipeline.load_split(d.name, split, "gt", d.data_dir or None, d.manual_dir or None,
                               max_sequences or d.max_sequences or None, frame_stride)
    predicted = predict_split(config, trainer, state, data,
                              batch_size or config.eval.batch_size)
    p1 = float(np.mean(pose_metrics.mpjpe(predicted["pose_3d"], data.pose_3d)))
    p2 = float(np.mean(pose_metrics.p_mpjpe(predicted["pose_3d"], data.pose_3d)))
    errors[split] = {"mpjpe": p1, "p_mpjpe": p2}
    path = stage1.write(out_dir, split, data, predicted["pose_2d"], predicted["depth"],
                        predicted["pose_3d"], {
                            "workdir": os.path.abspath(workdir),
                            "step": int(jax.device_get(state.step)),
                            "dataset": d.name, "frame_stride": frame_stride,
                            "sequences": len(data.lengths), "frames": data.num_frames,
                            "crop_size": config.data.crop_size,
                            "depth_range_mm": config.model.depth_range_mm,
                            "images": "rendered, one fixed look per sequence",
                            "mpjpe": p1, "p_mpjpe": p2})
    print(f"jpose.predict: {split}: {data.num_frames} frames of {len(data.lengths)} sequences, "
          f"stage-1 MPJPE {p1:.1f} mm, P-MPJPE {p2:.1f} mm; wrote {path}")
  return errors


def define_flags() -> None:
  """The command line (defined only when run as a command)."""
  flags.DEFINE_string("workdir", None, "A trained integral regression workdir.")
  flags.DEFINE_string("config", None, "The run's config file[:variant], for workdirs "
                      "without config.json.")
  flags.DEFINE_list("splits", ["train", "test"], "Splits to predict.")
  flags.DEFINE_integer("frame_stride", 1, "Every n-th frame of each sequence (the TCN's "
                       "data.frame_stride).")
  flags.DEFINE_integer("max_sequences", 0, "Evenly spaced sequences per split (0: the "
                       "config's data.max_sequences, or all).")
  flags.DEFINE_string("out", None, "Output folder (default: <workdir>/stage1).")
  flags.DEFINE_integer("batch_size", None, "Frames per batch (default: eval.batch_size).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's per-checkpoint INFO lines
  try:
    run(FLAGS.workdir, FLAGS.splits, FLAGS.frame_stride, FLAGS.max_sequences, FLAGS.out,
        FLAGS.config, FLAGS.batch_size)
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f"jpose.predict: {e}")


if __name__ == "__main__":
  define_flags()
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
