"""Serialise a trained lifter, TCN or VAE, parameters included, with `jax.export`.

  python -m jpose.export --workdir /tmp/tcn243_coco --out /tmp/tcn243_coco.bin

The file holds `jpose.inference.lifting.lift_function` (the same path `jpose.infer` runs, flip test
included) for a symbolic batch, and for the TCN a symbolic number of frames, lowered for
CPU and CUDA. Loading it back needs only jax:

  import jax, numpy as np
  lift = jax.export.deserialize(bytearray(open("/tmp/tcn243_coco.bin", "rb").read())).call
  poses_3d = lift(np.asarray(keypoints, np.float32))  # (B, T, 17, 3) COCO (x, y, score)

`<out>.json` describes the input and output (joint names, units, threshold, receptive
field) and the run it came from.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from jax import export as jax_export
import ml_collections

from jpose import cli
from jpose.inference import lifting
from jpose.geometry import skeleton
from jpose.train import loop

FLAGS = flags.FLAGS

PLATFORMS = ("cpu", "cuda")


def export_model(config: ml_collections.ConfigDict, trainer, state,
                 score_threshold: float = 0.3, platforms=PLATFORMS) -> jax_export.Exported:
  """The lift function of a trained model with its parameters, for symbolic shapes:
  (b, 17, 3) keypoints for frame-wise models, (b, t, 17, 3) with t >= 1 for the TCN."""
  lift = lifting.lift_function(config, trainer, score_threshold)
  state = jax.device_get(state)
  if config.train.trainer == "temporal":
    shape = jax_export.symbolic_shape("b, t, 17, 3", constraints=["t >= 1"])
  else:
    shape = jax_export.symbolic_shape("b, 17, 3")
  spec = jax.ShapeDtypeStruct(shape, jax.numpy.float32)
  return jax_export.export(jax.jit(lambda keypoints: lift(state, keypoints)),
                           platforms=platforms)(spec)


def metadata(config: ml_collections.ConfigDict, state, exported: jax_export.Exported,
             score_threshold: float, workdir: str) -> dict:
  temporal = config.train.trainer == "temporal"
  return {
      "input": ("(batch, frames, 17, 3)" if temporal else "(batch, 17, 3)")
               + " float32: COCO-17 keypoints (x, y, score) in the image's pixels",
      "keypoint_names": list(skeleton.COCO_17.joint_names),
      "score_threshold": score_threshold,
      "output": ("(batch, frames, 17, 3)" if temporal else "(batch, 17, 3)")
                + " float32: Human3.6M-17 joints, mm, camera frame (x right, y down, z away), "
                "pelvis at the origin",
      "joint_names": list(skeleton.H36M_17.joint_names),
      "receptive_field": receptive_field(config),
      "platforms": list(exported.platforms),
      "workdir": os.path.abspath(workdir),
      "step": int(jax.device_get(state.step)),
      "config": config.to_dict(),
  }


def receptive_field(config: ml_collections.ConfigDict) -> int:
  """Frames the model sees per output frame (1 for frame-wise models)."""
  if config.train.trainer != "temporal":
    return 1
  return config.model.filter_width ** (config.model.num_blocks + 1)


def write(exported: jax_export.Exported, meta: dict, out: str) -> list[str]:
  """out and out.json; an existing file is replaced only once the new one is complete."""
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  for path, payload in ((out, bytes(exported.serialize())),
                        (out + ".json", json.dumps(meta, indent=2).encode())):
    with open(path + ".tmp", "wb") as f:
      f.write(payload)
    os.replace(path + ".tmp", path)
  return [out, out + ".json"]


def load(path: str):
  """The exported lift function (jax only): keypoints -> 3D, as `metadata` describes."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no exported model")
  with open(path, "rb") as f:
    try:
      return jax_export.deserialize(bytearray(f.read())).call
    except Exception as e:  # jax raises several types on a foreign or damaged file.
      raise ValueError(f"{path}: not a jax.export file ({type(e).__name__}: {e})") from e


def define_flags() -> None:
  """The command line (defined only when run as a command, so that importing the
  module next to other absl commands never clashes)."""
  flags.DEFINE_string("workdir", None, "A trained lifter, TCN or VAE workdir.")
  flags.DEFINE_string("config", None, "The run's config file[:variant], for workdirs "
      "without config.json.")
  flags.DEFINE_string("out", None, "The file to write (and <out>.json).")
  flags.DEFINE_float("score_threshold", 0.3, "Keypoints scoring under this are "
      "read as absent.")
  flags.DEFINE_list("platforms", list(PLATFORMS), "Platforms to lower for.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's per-checkpoint INFO lines
  try:
    config, trainer, state = loop.load_trained(FLAGS.workdir, FLAGS.config)
    exported = export_model(config, trainer, state, FLAGS.score_threshold,
                            tuple(FLAGS.platforms))
  except (FileNotFoundError, ValueError) as e:
    cli.fail("jpose.export", cli.message(e))
  meta = metadata(config, state, exported, FLAGS.score_threshold, FLAGS.workdir)
  paths = write(exported, meta, FLAGS.out)
  print(f"jpose.export: wrote {paths[0]} ({os.path.getsize(paths[0]) / 1e6:.1f} MB, "
        f"{', '.join(exported.platforms)}) and {paths[1]}")


if __name__ == "__main__":
  define_flags()
  cli.run("jpose.export", main, required=("workdir", "out"))
