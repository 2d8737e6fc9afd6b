"""Rejects configs with keys that no jpose code reads, or values it cannot use, with an
error that names the field.
"""

from __future__ import annotations

import difflib
import os

import ml_collections

from configs import common


def _paths(config: ml_collections.ConfigDict, prefix: str = "") -> dict[str, object]:
  out = {}
  for key, value in config.items():
    path = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      out.update(_paths(value, path + "."))
    else:
      out[path] = value
  return out


def validate(config: ml_collections.ConfigDict) -> None:
  known = _paths(common.base_config())
  for path, value in _paths(config).items():
    if path not in known:
      hint = difflib.get_close_matches(path, known, n=1)
      raise KeyError(f"config.{path}: unknown field"
                     + (f"; did you mean config.{hint[0]}?" if hint else ""))
  from jpose.data import datasets, lifter_inputs, pipeline  # pylint: disable=g-import-not-at-top
  from jpose.formats import image_records  # pylint: disable=g-import-not-at-top
  from jpose.formats import pretrained  # pylint: disable=g-import-not-at-top
  from jpose.models import registry  # pylint: disable=g-import-not-at-top
  from jpose.train import registry as trainer_registry  # pylint: disable=g-import-not-at-top
  from jpose.models import resnet  # pylint: disable=g-import-not-at-top
  from jpose.train import integral  # pylint: disable=g-import-not-at-top
  from jpose.train import optimizers  # pylint: disable=g-import-not-at-top
  checks = [
      ("data.name", config.data.name, datasets.names()),
      ("data.input_2d", config.data.input_2d, (*pipeline.INPUT_2D_FIELDS, "stage1")),
      ("data.keypoints", config.data.keypoints, lifter_inputs.KEYPOINT_SETS),
      ("data.frame_2d", config.data.frame_2d, lifter_inputs.FRAMES_2D),
      ("model.name", config.model.name, registry.MODELS),
      ("train.trainer", config.train.trainer, trainer_registry.TRAINERS),
      ("train.optimizer", config.train.optimizer, optimizers.OPTIMIZERS),
      ("train.compute_dtype", config.train.compute_dtype, registry.COMPUTE_DTYPES),
      ("vae.projection", config.vae.projection, ("perspective", "orthographic")),
      ("vae.rotation_axis", config.vae.rotation_axis, ("world_up", "camera_y")),
      ("data.augment", config.data.augment, integral.AUGMENT_PRESETS),
      ("model.resnet_depth", config.model.resnet_depth, resnet.LAYOUTS),
      ("body.model", config.body.model, ("anny", "smpl")),
  ]
  for field, value, allowed in checks:
    if value not in allowed:
      raise ValueError(f"config.{field}: '{value}' is not one of {sorted(allowed)}")
  for field in ("train.batch_size", "train.num_steps", "train.checkpoint_every",
                "train.log_every", "train.steps_per_dispatch", "eval.batch_size",
                "eval.frame_stride", "eval.final_frame_stride", "data.crop_size",
                "data.frame_stride",
                "model.depth_bins", "model.head_features"):
    section, key = field.split(".")
    if int(config[section][key]) <= 0:
      raise ValueError(f"config.{field}: must be positive, got {config[section][key]}")
  for field in ("hmr.iterations", "hmr.held_out", "hmr.mr_points", "hmr.mr_vertex_stride",
                "hmr.n_critic", "hmr.critic_width", "hmr.critic_conv_features"):
    section, key = field.split(".")
    if int(config[section][key]) <= 0:
      raise ValueError(f"config.{field}: must be positive, got {config[section][key]}")
  if config.train.trainer == "hmr":
    if config.model.name != "hmr_net":
      raise ValueError(f"config.model.name='{config.model.name}': the hmr trainer trains "
                       "'hmr_net'")
    if config.data.crop_size > image_records.CROP_SIZE and config.data.images:
      raise ValueError(f"config.data.crop_size={config.data.crop_size}: recorded crops are "
                       f"stored at {image_records.CROP_SIZE} px and are only shrunk")
    if config.hmr.fixed_batch < 0:
      raise ValueError(f"config.hmr.fixed_batch: must be >= 0, got {config.hmr.fixed_batch}")
    if config.hmr.fixed_batch and config.data.images:
      raise ValueError("config.hmr.fixed_batch: repeats rendered examples; it cannot be used "
                       f"with recorded images (config.data.images='{config.data.images}')")
  if config.data.crop_size % 32:
    raise ValueError(f"config.data.crop_size: must be a multiple of 32 (the ResNet's "
                     f"stride), got {config.data.crop_size}")
  integral.parse_sources(config.data.images)
  weights = pretrained.weights_path(config.model)  # unset where required: a named error.
  if weights and not os.path.isfile(weights):
    raise FileNotFoundError(f"config.model.pretrained: no file at {weights}")
  k = config.train.steps_per_dispatch
  for field in ("num_steps", "log_every", "checkpoint_every", "eval_every"):
    if config.train[field] % k:
      raise ValueError(f"config.train.{field}={config.train[field]} must be a multiple of "
                       f"config.train.steps_per_dispatch={k}")
  if config.data.input_2d == "stage1" and config.train.trainer not in ("supervised", "temporal"):
    raise ValueError(f"config.data.input_2d='stage1': only the lifters and the TCN read a "
                     f"first stage's predictions, not the {config.train.trainer} trainer")
  if config.data.input_2d == "stage1" and config.eval.depth_noise:
    raise ValueError(f"config.eval.depth_noise={config.eval.depth_noise}: test-time depth noise "
                     "stands in for a first stage's errors; with data.input_2d='stage1' the "
                     "depth is a first stage's, so set it to 0")
  if config.train.trainer == "integral" and config.data.input_2d != "gt":
    raise ValueError(f"config.data.input_2d='{config.data.input_2d}': the integral trainer "
                     "renders people where the ground-truth 2D puts them; use 'gt'")
  if not 0.0 <= config.model.joint_dropout < 1.0:
    raise ValueError(f"config.model.joint_dropout: a probability in [0, 1) is needed, got "
                     f"{config.model.joint_dropout}")
  if (config.train.trainer in ("vae", "integral")
      and (config.data.keypoints, config.data.frame_2d) != ("h36m", "image")):
    raise ValueError(f"config.data.keypoints='{config.data.keypoints}', config.data.frame_2d="
                     f"'{config.data.frame_2d}': the {config.train.trainer} trainer reads 2D its "
                     "own way; only the lifters and the TCN take these (use 'h36m', 'image')")
  if config.train.trainer == "vae" and config.data.input_2d != "gt":
    raise ValueError(f"config.data.input_2d='{config.data.input_2d}' cannot feed the VAE lifter: "
                     "its 2D normalisation (jpose.geometry.weak_perspective.normalise_2d) "
                     "reads all 17 joints, and the detections have no Neck/Nose; use 'gt'")
