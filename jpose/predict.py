"""Stage 1 of Kato et al.'s two-stage video model: a trained integral regressor's 2D pose
and joint depth for every frame of every sequence, stored for the TCN
(`jpose.formats.stage1`).

  python -m jpose.predict --workdir /tmp/integral_cpu --splits train,test --frame_stride 5
  python -m jpose.main --config configs/tcn27.py --workdir /tmp/tcn27_stage1 \
      --config.data.input_2d=stage1 --config.data.stage1_dir=/tmp/integral_cpu/stage1 \
      --config.data.frame_stride=5 --config.model.input_depth=True ...

The frames are recorded or rendered. `--images h36m_images/stride1` (or, by default, the
dataset of the run's config.eval.images) reads each split's Human3.6M video frames from
those records, which must hold every frame_stride-th frame of every sequence of the
run's dataset (data.name=h36m): the stride1 build holds every frame. Without either,
the frames are the people rendered at the dataset's poses, each sequence with its fixed
evaluation look, so every frame renders the same way each time.

  python -m jpose.prepare --dataset h36m_images/stride1 --manual_dir /path/to/h36m
  python -m jpose.predict --workdir /tmp/stage1 --splits train,test --images h36m_images/stride1

As in Kato et al., the training split's predictions come from a model that saw those
frames in training: they are better than a detector's on unseen video, and the TCN
learns from that.
"""

from __future__ import annotations

import functools
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
import numpy as np
import tqdm

from jpose import cli
from jpose.data import datasets
from jpose.data import image_pipeline
from jpose.data import pipeline
from jpose.formats import stage1
from jpose.evaluate import evaluator
from jpose.geometry import heatmap
from jpose.metrics import pose as pose_metrics
from jpose.train import loop

FLAGS = flags.FLAGS


def _stage1_outputs(trainer, state, crops) -> dict[str, jax.Array]:
  """Person crops (`trainer.record_keys`: recorded, or rendered by `render_eval`) -> the
  stored arrays: pose_2d (B, 17, 2) image pixels, depth (B, 17) root-relative mm, pose_3d
  (B, 17, 3) root-relative camera mm with the true root depth. With the run's
  eval.flip_test each crop is also predicted mirrored, as the evaluator does."""
  joints = trainer.predict_crops(state, crops["image"], trainer.config.eval.flip_test)
  return {"pose_2d": heatmap.crop_to_image(joints[..., :2], crops["crop"]),
          "depth": joints[..., 2], "pose_3d": trainer.crop_to_camera(joints, crops)}


def _predict_batches(step, state, dataset, keys) -> dict[str, np.ndarray]:
  """`step(state, batch)` over every batch of `dataset`, its valid rows concatenated."""
  out = {"pose_2d": [], "depth": [], "pose_3d": []}
  for batch in tqdm.tqdm(dataset, desc="predict", leave=False):
    predicted = step(state, {k: batch[k] for k in keys})
    for k in out:
      out[k].append(np.asarray(predicted[k])[batch["valid"]])
  return {k: np.concatenate(v) for k, v in out.items()}


def predict_split(trainer, state, data, batch_size: int) -> dict[str, np.ndarray]:
  """Every frame of `data` (a SequenceSet), rendered and predicted: `_stage1_outputs`."""
  step = jax.jit(lambda state, batch: _stage1_outputs(trainer, state, trainer.render_eval(batch)))
  dataset = pipeline.make_dataset(data, evaluator.host_norm_stats(state), batch_size,
                                  train=False, shard_index=0, shard_count=1)
  return _predict_batches(step, state, dataset, trainer.predict_keys)


def predict_recorded_split(trainer, state, data, source: image_pipeline.Source,
                           frame_stride: int, batch_size: int, data_dir: str | None = None):
  """Every frame of `data` (a SequenceSet read with `frame_stride`), predicted from its
  recorded crop in `source` (an h36m_images split): (`_stage1_outputs`, the SequenceSet
  predicted, {sequence key: why} for those left out). A sequence is left out only where
  the build listed its video as missing, unreadable or short
  (`stage1.unusable_sequences`); any other sequence without every frame is an error."""
  name = f"{source.name}:{source.split}"
  records = image_pipeline.open_serialized(source, data_dir)
  builder = datasets.get_builder(source.name, data_dir)
  build_stride = builder.builder_config.stride
  unusable = stage1.unusable_sequences(builder.info.metadata)
  keys = stage1.sequence_keys(data)
  skipped = {key: unusable[key] for key in keys if key in unusable}
  if skipped:
    logging.warning("%s: %d sequences left out, their videos unusable: %s", name,
                    len(skipped), "; ".join(f"{k} ({v})" for k, v in skipped.items()))
    data = data.select([s for s, key in enumerate(keys) if key not in skipped])
  # A first pass reads every record's id: tfds stores the records shuffled.
  image_ids = (image_pipeline.parse_record(records[i])[2]
               for i in tqdm.trange(len(records), desc="record ids", leave=False))
  rows = stage1.record_rows(image_ids, data, frame_stride, build_stride, name)
  dataset = evaluator.image_eval_dataset(source, batch_size, trainer.size,
                                         image_pipeline.InOrder(records, rows),
                                         shard_index=0, shard_count=1)
  step = jax.jit(functools.partial(_stage1_outputs, trainer))
  return _predict_batches(step, state, dataset, trainer.record_keys), data, skipped


def recorded_frames(images: str, trainer) -> str:
  """The h36m_images dataset predict reads (`images`, or else the dataset of the run's
  config.eval.images), or "" to render the frames."""
  where = "--images"
  if not images and trainer.eval_source is not None:
    images, where = trainer.eval_source.name, f"config.eval.images='{trainer.config.eval.images}'"
  if images and (":" in images or images.split("/")[0] != "h36m_images"):
    raise ValueError(f"{where}: jpose.predict reads the splits (--splits) of an h36m_images "
                     f"dataset, e.g. h36m_images/stride1, not '{images}'")
  return images


def run(workdir: str, splits: list[str], frame_stride: int = 1, max_sequences: int = 0,
        out_dir: str | None = None, config: ml_collections.ConfigDict | str | None = None,
        batch_size: int | None = None, images: str = "", flip_test: bool | None = None
        ) -> dict[str, dict[str, float]]:
  """The command as a function. Returns each split's stage-1 MPJPE and P-MPJPE (mm).
  flip_test: average each crop's prediction with its mirror's (None: the run's
  eval.flip_test)."""
  config, trainer, state = loop.load_trained(workdir, config)
  if flip_test is not None:
    config.eval.flip_test = bool(flip_test)  # the trainer reads it when it compiles.
  if config.train.trainer != "integral":
    raise ValueError(f"{workdir}: a '{config.train.trainer}' run; stage-1 predictions come "
                     "from an integral regressor (train.trainer=integral)")
  images = recorded_frames(images, trainer)
  out_dir = out_dir or os.path.join(workdir, "stage1")
  d = config.data
  batch_size = batch_size or config.eval.batch_size
  errors = {}
  for split in splits:
    data = pipeline.load_split(d.name, split, "gt", d.data_dir or None, d.manual_dir or None,
                               max_sequences or d.max_sequences or None, frame_stride)
    if images:
      source = image_pipeline.Source(images, split)
      predicted, data, skipped = predict_recorded_split(trainer, state, data, source,
                                                        frame_stride, batch_size,
                                                        d.data_dir or None)
      frames = f"{images}:{split}"
    else:
      predicted, skipped = predict_split(trainer, state, data, batch_size), {}
      frames = "rendered, one fixed look per sequence"
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
                            "images": frames, "skipped_sequences": skipped,
                            "flip_test": bool(config.eval.flip_test),
                            "mpjpe": p1, "p_mpjpe": p2})
    left_out = f", {len(skipped)} left out (unusable videos)" if skipped else ""
    print(f"jpose.predict: {split}: {data.num_frames} frames of {len(data.lengths)} sequences "
          f"({frames}{left_out}), stage-1 MPJPE {p1:.1f} mm, P-MPJPE {p2:.1f} mm; wrote {path}")
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
  flags.DEFINE_bool("flip_test", None, "Average each crop's prediction with its mirror "
                    "image's (default: the run's config.eval.flip_test).")
  flags.DEFINE_string("images", "", "Recorded video frames to predict: an h36m_images "
                      "dataset (e.g. h36m_images/stride1), read at each of --splits. Default: "
                      "the dataset of the run's config.eval.images, or, where that is empty, "
                      "people rendered at the dataset's poses.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's per-checkpoint INFO lines
  try:
    run(FLAGS.workdir, FLAGS.splits, FLAGS.frame_stride, FLAGS.max_sequences, FLAGS.out,
        FLAGS.config, FLAGS.batch_size, FLAGS.images, FLAGS.flip_test)
  except (FileNotFoundError, ValueError) as e:
    cli.fail("jpose.predict", cli.message(e))


if __name__ == "__main__":
  define_flags()
  cli.run("jpose.predict", main, required=("workdir",))
