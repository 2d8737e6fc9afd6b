"""The VAE lifter and its 2D pose discriminator, as in the seed thesis's appendix.

Encoder: Linear(32 -> 1024), BN, Mish, Dropout 0.2; one residual block of two
[Linear(1024 -> 1024, no bias), BN, Mish, Dropout 0.2]; two Linear(1024 -> latent) heads
for mu and log sigma^2. Decoder: the mirror image from the latent to Linear(1024 -> 48),
bounded by tanh and scaled to the pose range. Discriminator: Linear(32 -> 1024),
LeakyReLU 0.01; two residual blocks of [Linear, LeakyReLU, Dropout 0.5] x 2; Linear(1 out).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


LOG_VAR_BOUND = 8.0


def mish(x):
  return x * jnp.tanh(jax.nn.softplus(x))


class _MishLayer(nn.Module):
  features: int
  dropout: float
  use_bias: bool = True
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Dense(self.features, use_bias=self.use_bias, dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    return nn.Dropout(self.dropout, deterministic=not train)(mish(x))


class _MishResidualMLP(nn.Module):
  """Input layer, one residual block of two bias-free layers."""

  width: int
  dropout: float
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool):
    x = _MishLayer(self.width, self.dropout, dtype=self.dtype, name="input")(x, train)
    y = _MishLayer(self.width, self.dropout, False, self.dtype, name="block_a")(x, train)
    y = _MishLayer(self.width, self.dropout, False, self.dtype, name="block_b")(y, train)
    return x + y


class Encoder(nn.Module):
  """(B, 32) normalised 2D -> (mu, log_var), each (B, latent)."""

  latent: int = 51
  width: int = 1024
  dropout: float = 0.2
  dtype: jnp.dtype | None = None  # compute dtype; the outputs are float32.

  @nn.compact
  def __call__(self, pose_2d, train: bool = False):
    h = _MishResidualMLP(self.width, self.dropout, self.dtype, name="trunk")(pose_2d, train)
    log_var = nn.Dense(self.latent, dtype=self.dtype, name="log_var")(h).astype(jnp.float32)
    # Softly bounded: while the KL weight is 0 (warm-up) nothing else holds log sigma^2,
    # and unbounded it drifted to ~70 here, so sampled codes saturated the decoder.
    log_var = LOG_VAR_BOUND * jnp.tanh(log_var / LOG_VAR_BOUND)
    return nn.Dense(self.latent, dtype=self.dtype, name="mu")(h).astype(jnp.float32), log_var


class Decoder(nn.Module):
  """(B, latent) -> (B, 16, 3) root-relative joints within +-pose_range."""

  num_joints: int = 16
  width: int = 1024
  dropout: float = 0.2
  pose_range: float = 3.0
  dtype: jnp.dtype | None = None  # compute dtype; the output is float32.

  @nn.compact
  def __call__(self, z, train: bool = False):
    h = _MishResidualMLP(self.width, self.dropout, self.dtype, name="trunk")(z, train)
    # Zero-initialised: training starts from the pose lifted at zero relative depth, not
    # from random depths of +-pose_range that only the (weak) adversarial term can undo.
    out = nn.Dense(self.num_joints * 3, kernel_init=nn.initializers.zeros, dtype=self.dtype,
                   name="output")(h).astype(jnp.float32)
    return self.pose_range * jnp.tanh(out).reshape(z.shape[0], self.num_joints, 3)


class PoseDiscriminator2D(nn.Module):
  """(B, 32) normalised 2D -> (B, 1) logits (the sigmoid is in the loss)."""

  width: int = 1024
  dropout: float = 0.5
  dtype: jnp.dtype | None = None  # compute dtype; the logits are float32.

  @nn.compact
  def __call__(self, pose_2d, train: bool = False):
    act = lambda v: nn.leaky_relu(v, 0.01)
    dense = lambda features, name: nn.Dense(features, dtype=self.dtype, name=name)
    x = act(dense(self.width, "input")(pose_2d))
    for b in range(2):
      y = x
      for layer in range(2):
        y = act(dense(self.width, f"block{b}_{layer}")(y))
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
      x = x + y
    return dense(1, "output")(x).astype(jnp.float32)
