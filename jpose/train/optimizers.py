"""The optimizers a config can name (`config.train.optimizer`) and their lr schedule.

"amsgrad" is PyTorch's AMSGrad, which VideoPose3D trained with. It differs from
`optax.amsgrad`: PyTorch keeps the running maximum of the raw second moment and applies
the bias correction after the maximum, while optax takes the maximum of the bias-corrected
moment, so optax's first steps (where the correction is large) set a floor that its later
steps never leave. "optax_amsgrad" keeps optax's version for runs made with it.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax


class AmsgradState(NamedTuple):
  count: jax.Array  # int32 scalar: updates applied.
  mu: optax.Updates  # first moment
  nu: optax.Updates  # second moment, not bias-corrected
  nu_max: optax.Updates  # running maximum of nu


def scale_by_torch_amsgrad(b1: float = 0.9, b2: float = 0.999,
                           eps: float = 1e-8) -> optax.GradientTransformation:
  """torch.optim.Adam(amsgrad=True)'s direction: (m / (1 - b1^t)) /
  (sqrt(max_s v_s) / sqrt(1 - b2^t) + eps), with m and v the raw moments."""

  def init(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)
    return AmsgradState(jnp.zeros([], jnp.int32), zeros(), zeros(), zeros())

  def update(grads, state, params=None):
    del params
    count = state.count + 1
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
    nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
    # 1 - b^t as -expm1(t log b): in float32, 1 - 0.999 loses 4 of its 7 digits.
    t = count.astype(jnp.float32)
    correction_1 = -jnp.expm1(t * math.log(b1))
    root_correction_2 = jnp.sqrt(-jnp.expm1(t * math.log(b2)))
    updates = jax.tree.map(
        lambda m, v: (m / correction_1) / (jnp.sqrt(v) / root_correction_2 + eps), mu, nu_max)
    return updates, AmsgradState(count, mu, nu, nu_max)

  return optax.GradientTransformation(init, update)


def torch_amsgrad(learning_rate: optax.ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
                  eps: float = 1e-8) -> optax.GradientTransformation:
  """PyTorch's Adam with amsgrad=True (no weight decay)."""
  return optax.chain(scale_by_torch_amsgrad(b1, b2, eps),
                     optax.scale_by_learning_rate(learning_rate))


# config.train.optimizer -> constructor of the optimizer from a learning-rate schedule.
OPTIMIZERS = {"adam": optax.adam, "amsgrad": torch_amsgrad, "optax_amsgrad": optax.amsgrad}


def make_optimizer(config: ml_collections.ConfigDict, learning_rate: float,
                   steps_per_epoch: int) -> optax.GradientTransformation:
  """config.train.optimizer with staircase exponential decay every lr_decay_steps (0: every
  epoch)."""
  decay_steps = config.train.lr_decay_steps or max(1, steps_per_epoch)
  schedule = optax.exponential_decay(learning_rate, decay_steps, config.train.lr_decay_rate,
                                     staircase=True)
  return OPTIMIZERS[config.train.optimizer](schedule)  # name checked by config_check
