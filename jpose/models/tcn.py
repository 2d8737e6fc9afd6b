"""VideoPose3D's dilated temporal convolution net (Pavllo et al. 2019), written for one
sequence and vmapped over the batch.

Layers: an input conv of width W to C channels, then B residual blocks (a conv of width
W and dilation W^b, then a conv of width 1), then a width-1 output conv to 3J. Every conv
but the last is followed by batch norm, ReLU and dropout. Receptive field: W^(B+1).

One set of parameters, two forms:
  * `strided=True` (training): each window of exactly one receptive field gives its
    centre frame; convs stride by W instead of dilating (VideoPose3D's fast 1-frame form).
  * `strided=False` (inference): dilated convs slide over a sequence of any length
    T >= receptive field and give T - receptive_field + 1 frames (pad first; see
    `pad_sequence`).
With `causal=True` the receptive field is right-aligned: frame t sees t-RF+1 ... t.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

BATCH_AXIS = "batch"
# PyTorch's Conv1d default, U(+-1/sqrt(fan_in)), as VideoPose3D trained with. flax's default
# (lecun normal) is sqrt(3) times wider, which makes the early outputs (in metres) and
# their dropout noise larger and slowed the first thousand steps here.
TORCH_CONV_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


class DecayingBatchNorm(nn.Module):
  """Batch norm over the time axis and the vmapped batch axis, with the running-average
  momentum passed in at call time (VideoPose3D decays it from 0.1 to 0.001).

  `momentum` follows PyTorch's convention: the weight of the new batch statistics.
  """

  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool, momentum):
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    mean_var = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
    var_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
    if train:
      xf = x.astype(jnp.float32)
      mean = jax.lax.pmean(jnp.mean(xf, axis=0), BATCH_AXIS)
      mean_sq = jax.lax.pmean(jnp.mean(xf**2, axis=0), BATCH_AXIS)
      var = jnp.maximum(mean_sq - mean**2, 0.0)
      if not self.is_initializing():
        mean_var.value = (1 - momentum) * mean_var.value + momentum * mean
        var_var.value = (1 - momentum) * var_var.value + momentum * var
    else:
      mean, var = mean_var.value, var_var.value
    y = (x - mean.astype(x.dtype)) * jax.lax.rsqrt(var + self.epsilon).astype(x.dtype)
    return y * scale.astype(x.dtype) + bias.astype(x.dtype)


class _SequenceTCN(nn.Module):
  """The TCN on one sequence: (T, J_in * F) -> (T', J_out * 3)."""

  num_outputs: int
  filter_width: int = 3
  num_blocks: int = 2
  channels: int = 1024
  dropout: float = 0.25
  causal: bool = False
  strided: bool = False
  dtype: jnp.dtype | None = None

  def _conv(self, name, x, width, dilation, bias=False, features=None):
    step = dict(strides=(width,)) if self.strided and width > 1 else dict(
        kernel_dilation=(dilation,))
    return nn.Conv(features or self.channels, (width,), padding="VALID", use_bias=bias,
                   kernel_init=TORCH_CONV_INIT, dtype=self.dtype, param_dtype=jnp.float32,
                   name=name, **step)(x)

  def _norm_act(self, name, x, train, momentum):
    x = DecayingBatchNorm(name=name)(x, train, momentum)
    x = nn.relu(x)
    return nn.Dropout(self.dropout, deterministic=not train)(x)

  @nn.compact
  def __call__(self, x, train: bool, momentum):
    w = self.filter_width
    x = self._conv("expand_conv", x.astype(self.dtype or x.dtype), w, 1)
    x = self._norm_act("expand_bn", x, train, momentum)
    dilation = w
    for b in range(self.num_blocks):
      if self.strided:
        offset = (w - 1) if self.causal else w // 2
        residual = x[offset::w]
      else:
        pad = (w - 1) * dilation // 2
        shift = pad if self.causal else 0
        residual = x[pad + shift: x.shape[0] - pad + shift]
      y = self._conv(f"block{b}_conv", x, w, dilation)
      y = self._norm_act(f"block{b}_bn", y, train, momentum)
      y = self._conv(f"block{b}_pointwise", y, 1, 1)
      y = self._norm_act(f"block{b}_pointwise_bn", y, train, momentum)
      x = residual + y
      dilation *= w
    return self._conv("shrink", x, 1, 1, bias=True, features=self.num_outputs).astype(jnp.float32)


class TemporalConvNet(nn.Module):
  """Batched TCN: (B, T, J_in, F) -> (B, T', J_out, 3), vmapped over B.

  Parameters and batch statistics are shared across the batch; dropout masks differ per
  sequence; batch norm reduces over time and the vmapped batch axis together.
  """

  num_joints_out: int = 17
  filter_width: int = 3
  num_blocks: int = 2
  channels: int = 1024
  dropout: float = 0.25
  causal: bool = False
  dtype: jnp.dtype | None = None

  @property
  def receptive_field(self) -> int:
    return receptive_field(self.filter_width, self.num_blocks)

  @nn.compact
  def __call__(self, poses, train: bool = False, strided: bool = False, momentum=0.1):
    batch, time = poses.shape[:2]
    flat = poses.reshape(batch, time, -1)
    vmapped = nn.vmap(_SequenceTCN, in_axes=(0, None, None), out_axes=0,
                      variable_axes={"params": None, "batch_stats": None},
                      split_rngs={"params": False, "dropout": True}, axis_name=BATCH_AXIS)
    out = vmapped(num_outputs=self.num_joints_out * 3, filter_width=self.filter_width,
                  num_blocks=self.num_blocks, channels=self.channels, dropout=self.dropout,
                  causal=self.causal, strided=strided, dtype=self.dtype, name="tcn")(
                      flat, train, jnp.asarray(momentum, jnp.float32))
    return out.reshape(batch, out.shape[1], self.num_joints_out, 3)


def receptive_field(filter_width: int, num_blocks: int) -> int:
  return filter_width ** (num_blocks + 1)


def pad_sequence(poses, field: int, causal: bool = False):
  """Edge-replicates a (T, ...) sequence so the dilated form gives all T frames."""
  if causal:
    before, after = field - 1, 0
  else:
    before = after = field // 2
  widths = [(before, after)] + [(0, 0)] * (poses.ndim - 1)
  return jnp.pad(poses, widths, mode="edge")
