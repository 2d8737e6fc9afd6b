"""Model registry: config.model.name -> a function that builds the Flax module."""

from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from jpose.models import hmr
from jpose.models import integral
from jpose.models import lifter
from jpose.models import tcn
from jpose.models import vae

# config.train.compute_dtype -> the dtype of the models' matmuls and convolutions.
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

NUM_LIFTER_OUTPUTS = 16 * 3  # 17 joints less the root, which is the origin.


def _dtype(config: ml_collections.ConfigDict):
  return COMPUTE_DTYPES[config.train.compute_dtype]


def _lifter(config: ml_collections.ConfigDict) -> nn.Module:
  m = config.model
  return lifter.ResidualMLP(num_outputs=NUM_LIFTER_OUTPUTS, width=m.width,
                            num_blocks=m.num_blocks, dropout=m.dropout, max_norm=m.max_norm,
                            intermediate_head_after=m.intermediate_head_after,
                            dtype=_dtype(config))


def _pose_critic(config: ml_collections.ConfigDict) -> nn.Module:
  """A DeepBase1-shaped discriminator on (normalised) 3D poses, one logit out.

  No batch norm: real and generated poses are judged in separate batches, and batch
  statistics would let the critic tell them apart by batch rather than by pose.
  """
  g = config.gan
  return lifter.ResidualMLP(num_outputs=1, width=g.critic_width, num_blocks=g.critic_blocks,
                            dropout=config.model.dropout, max_norm=False, batch_norm=False,
                            dtype=_dtype(config))


def _tcn(config: ml_collections.ConfigDict) -> nn.Module:
  m = config.model
  return tcn.TemporalConvNet(num_joints_out=17, filter_width=m.filter_width,
                             num_blocks=m.num_blocks, channels=m.width, dropout=m.dropout,
                             causal=m.causal, dtype=_dtype(config))


def _vae_encoder(config: ml_collections.ConfigDict) -> nn.Module:
  return vae.Encoder(latent=config.vae.latent_dim, width=config.model.width,
                     dropout=config.model.dropout, dtype=_dtype(config))


def _vae_decoder(config: ml_collections.ConfigDict) -> nn.Module:
  return vae.Decoder(width=config.model.width, dropout=config.model.dropout,
                     pose_range=config.vae.pose_range, dtype=_dtype(config))


def _pose_discriminator_2d(config: ml_collections.ConfigDict) -> nn.Module:
  return vae.PoseDiscriminator2D(width=config.model.width, dtype=_dtype(config))


def _integral_net(config: ml_collections.ConfigDict) -> nn.Module:
  m = config.model
  return integral.IntegralPoseNet(resnet_depth=m.resnet_depth, num_joints=17,
                                  depth_bins=m.depth_bins, head_features=m.head_features,
                                  dtype=_dtype(config))


def _hmr_net(config: ml_collections.ConfigDict) -> nn.Module:
  m = config.model
  return hmr.HmrNet(resnet_depth=m.resnet_depth, iterations=config.hmr.iterations,
                    width=m.width, dropout=m.dropout, dtype=_dtype(config))


def _hmr_critic(config: ml_collections.ConfigDict) -> nn.Module:
  h = config.hmr
  return hmr.HmrCritic(conv_features=h.critic_conv_features, pose_width=h.critic_width,
                       kcs_width=h.critic_width, dtype=_dtype(config))


MODELS: dict[str, Callable[[ml_collections.ConfigDict], nn.Module]] = {
    "lifter": _lifter,
    "pose_critic": _pose_critic,
    "tcn": _tcn,
    "vae_encoder": _vae_encoder,
    "vae_decoder": _vae_decoder,
    "pose_discriminator_2d": _pose_discriminator_2d,
    "integral_net": _integral_net,
    "hmr_net": _hmr_net,
    "hmr_critic": _hmr_critic,
}


def build(name: str, config: ml_collections.ConfigDict) -> nn.Module:
  if name not in MODELS:
    raise KeyError(f"model.name: unknown model '{name}'; known: {sorted(MODELS)}")
  return MODELS[name](config)
