"""Trainer registry: config.train.trainer -> trainer class."""

from __future__ import annotations

import ml_collections

from jpose.data import pipeline
from jpose.train import hmr
from jpose.train import integral
from jpose.train import temporal
from jpose.train import trainers
from jpose.train import vae

TRAINERS = {
    "supervised": trainers.SupervisedLifter,
    "gan": trainers.GanLifter,
    "temporal": temporal.TemporalTrainer,
    "vae": vae.VaeTrainer,
    "integral": integral.IntegralTrainer,
    "hmr": hmr.HmrTrainer,
}


def trainer_class(config: ml_collections.ConfigDict):
  if config.train.trainer not in TRAINERS:
    raise KeyError(f"train.trainer: unknown trainer '{config.train.trainer}'; "
                   f"known: {sorted(TRAINERS)}")
  return TRAINERS[config.train.trainer]


def build(config: ml_collections.ConfigDict, norm: pipeline.NormStats, num_train_frames: int):
  return trainer_class(config)(config, norm, num_train_frames)
