"""The train state: every model's params, batch stats and optimizer state, plus the step,
the run's root RNG key and the normalisation statistics (so a checkpoint is self-contained).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from jpose.data import pipeline


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: optimizer steps completed.
  params: dict[str, Any]  # model name -> params
  batch_stats: dict[str, Any]  # model name -> batch-norm statistics ({} if none)
  opt_state: dict[str, Any]  # model name -> optax state
  rng: jax.Array  # uint32[2] raw key data of the run's root key.
  norm: pipeline.NormStats  # train-split statistics, as jnp arrays.


def stream(state: TrainState, name: str) -> jax.Array:
  """A named RNG stream for this step: fold_in(root, step), then fold_in(name).

  Named streams keep dropout, noise and adversarial sampling independent, and folding in
  the step makes a resumed run draw exactly what an uninterrupted one would.
  """
  key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
  return jax.random.fold_in(key, _stream_id(name))


def _stream_id(name: str) -> int:
  # A stable small integer per name (Python's hash() is salted per process).
  return sum((i + 1) * ord(ch) for i, ch in enumerate(name)) % (2**31)


def norm_stats_to_device(stats: pipeline.NormStats) -> pipeline.NormStats:
  return pipeline.NormStats(*(jnp.asarray(x, jnp.float32) for x in stats))
