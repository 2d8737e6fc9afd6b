"""The residual MLP lifter of Martinez et al. 2017 and its deeper variants.

Linear -> batch norm -> ReLU -> dropout, residual blocks of two such layers, He (Kaiming)
initialisation, and max-norm: Martinez's TensorFlow code clips each weight matrix with
`tf.clip_by_norm(w, 1)`, i.e. the whole matrix's Frobenius norm, in the forward pass.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class MaxNormDense(nn.Module):
  """A Dense layer whose kernel is rescaled to Frobenius norm <= max_norm when used."""

  features: int
  max_norm: float | None = 1.0
  use_bias: bool = True
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.he_normal(), (x.shape[-1], self.features),
                        jnp.float32)
    dtype = self.dtype or x.dtype
    y = jnp.dot(x.astype(dtype), kernel.astype(dtype))
    if self.max_norm is not None:
      # x (W c) = (x W) c for the scalar c: scaling the (batch, features) output instead of
      # the (in, features) kernel costs batch/in as much, forward and backward.
      norm = jnp.sqrt(jnp.sum(kernel**2))
      y = y * jnp.minimum(1.0, self.max_norm / jnp.maximum(norm, 1e-12)).astype(dtype)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(dtype)
    return y


class DenseBnReluDropout(nn.Module):
  features: int
  dropout: float
  max_norm: float | None
  batch_norm: bool = True
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool):
    x = MaxNormDense(self.features, self.max_norm, dtype=self.dtype)(x)
    if self.batch_norm:
      # flax momentum is the running average's keep rate: 0.9 is Keras/TF's 0.1 update.
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype)(x)
    x = nn.relu(x)
    return nn.Dropout(self.dropout, deterministic=not train)(x)


class ResidualMLP(nn.Module):
  """Input layer, `num_blocks` residual blocks of two layers, linear output.

  With `intermediate_head_after` = k > 0, a linear head after block k also returns an
  output (DeepBase2's intermediate supervision).
  """

  num_outputs: int
  width: int = 1024
  num_blocks: int = 2
  dropout: float = 0.5
  max_norm: bool = True
  batch_norm: bool = True
  intermediate_head_after: int = 0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool = False) -> dict[str, jnp.ndarray]:
    max_norm = 1.0 if self.max_norm else None
    layer = lambda: DenseBnReluDropout(self.width, self.dropout, max_norm, self.batch_norm,
                                       self.dtype)
    x = layer()(x, train)
    outputs = {}
    for block in range(1, self.num_blocks + 1):
      y = layer()(x, train)
      x = x + layer()(y, train)
      if block == self.intermediate_head_after:
        outputs["intermediate"] = MaxNormDense(self.num_outputs, max_norm, dtype=self.dtype,
                                               name="intermediate_head")(x).astype(jnp.float32)
    outputs["output"] = MaxNormDense(self.num_outputs, max_norm, dtype=self.dtype,
                                     name="output_head")(x).astype(jnp.float32)
    return outputs
