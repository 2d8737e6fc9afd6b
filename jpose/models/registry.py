"""Model registry: config.model.name -> a function that builds the Flax module."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import ml_collections

from jpose.models import lifter
from jpose.models import tcn
from jpose.models import vae

NUM_LIFTER_INPUTS = 16 * 2  # 17 joints less Neck/Nose, which detectors lack.
NUM_LIFTER_OUTPUTS = 16 * 3  # 17 joints less the root, which is the origin.


def _lifter(config: ml_collections.ConfigDict) -> nn.Module:
  m = config.model
  return lifter.ResidualMLP(num_outputs=NUM_LIFTER_OUTPUTS, width=m.width,
                            num_blocks=m.num_blocks, dropout=m.dropout, max_norm=m.max_norm,
                            intermediate_head_after=m.intermediate_head_after)


def _pose_critic(config: ml_collections.ConfigDict) -> nn.Module:
  """A DeepBase1-shaped discriminator on (normalised) 3D poses, one logit out.

  No batch norm: real and generated poses are judged in separate batches, and batch
  statistics would let the critic tell them apart by batch rather than by pose.
  """
  g = config.gan
  return lifter.ResidualMLP(num_outputs=1, width=g.critic_width, num_blocks=g.critic_blocks,
                            dropout=config.model.dropout, max_norm=False, batch_norm=False)


def _tcn(config: ml_collections.ConfigDict) -> nn.Module:
  m = config.model
  return tcn.TemporalConvNet(num_joints_out=17, filter_width=m.filter_width,
                             num_blocks=m.num_blocks, channels=m.width, dropout=m.dropout,
                             causal=m.causal)


def _vae_encoder(config: ml_collections.ConfigDict) -> nn.Module:
  return vae.Encoder(latent=config.vae.latent_dim, width=config.model.width,
                     dropout=config.model.dropout)


def _vae_decoder(config: ml_collections.ConfigDict) -> nn.Module:
  return vae.Decoder(width=config.model.width, dropout=config.model.dropout,
                     pose_range=config.vae.pose_range)


def _pose_discriminator_2d(config: ml_collections.ConfigDict) -> nn.Module:
  return vae.PoseDiscriminator2D(width=config.model.width)


MODELS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    "lifter": _lifter,
    "pose_critic": _pose_critic,
    "tcn": _tcn,
    "vae_encoder": _vae_encoder,
    "vae_decoder": _vae_decoder,
    "pose_discriminator_2d": _pose_discriminator_2d,
}


def build(name: str, config: ml_collections.ConfigDict) -> nn.Module:
  if name not in MODELS:
    raise KeyError(f"model.name: unknown model '{name}'; known: {sorted(MODELS)}")
  return MODELS[name](config)
