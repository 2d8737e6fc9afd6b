"""FLOPs of a traced program, counted from its jaxpr: every `dot_general` and
`conv_general_dilated`, forward and backward, at 2 FLOPs per multiply-add.

XLA's own `cost_analysis` depends on the backend: on a GPU it skips the cuDNN and cuBLAS
custom calls that do nearly all the work, so an MFU built on it reads 20-40x low there.
This count depends only on the program, so the same step counts the same on every device:

  flops = flops.count(jax.jit(train_step), state, batch, resident)

Matrix-unit work only: elementwise ops, reductions and transcendentals are left out (they
are a few percent of a step's arithmetic; XLA:CPU's figure, which has them, is kept beside
this one as `xla_flops` in `jpose.bench`). A convolution counts only the taps that land on
real input, as XLA does: none on padding or on the holes of a dilated input (the input
gradient of a strided conv). Loops count their body once per trip (`scan`'s length; a
`while` whose trip count is not static counts once and is reported).
`jax.lax.platform_dependent` branches are counted for one platform ("cuda" by default:
the standard ops every accelerator compiles); any other `cond` counts its costliest branch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
from jax.extend import core as jex_core
import numpy as np


@dataclasses.dataclass
class Count:
  """A program's FLOPs, split by primitive, with the loops that could not be unrolled."""

  dot_general: int = 0
  conv_general_dilated: int = 0
  unknown_trip_loops: int = 0

  @property
  def total(self) -> int:
    return self.dot_general + self.conv_general_dilated

  def add(self, other: "Count", times: int = 1) -> None:
    self.dot_general += times * other.dot_general
    self.conv_general_dilated += times * other.conv_general_dilated
    self.unknown_trip_loops += other.unknown_trip_loops


def dot_flops(lhs_shape, rhs_shape, dimension_numbers) -> int:
  """2 x (output elements) x (contracted size) of one `lax.dot_general`."""
  (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = dimension_numbers
  contracted = int(np.prod([lhs_shape[d] for d in lhs_contract], dtype=np.int64))
  batch = int(np.prod([lhs_shape[d] for d in lhs_batch], dtype=np.int64))
  lhs_free = int(np.prod([n for d, n in enumerate(lhs_shape)
                          if d not in lhs_contract and d not in lhs_batch], dtype=np.int64))
  rhs_free = int(np.prod([n for d, n in enumerate(rhs_shape)
                          if d not in rhs_contract and d not in rhs_batch], dtype=np.int64))
  return 2 * batch * lhs_free * rhs_free * contracted


def _valid_taps(in_size: int, out_size: int, window: int, stride: int, pad_low: int,
                lhs_dilation: int, rhs_dilation: int) -> int:
  """Sum over output positions of the kernel taps that land on a real input element (not
  padding, not a hole of the dilated input), along one spatial dimension."""
  out = np.arange(out_size)[:, None]
  tap = np.arange(window)[None, :]
  pos = out * stride + tap * rhs_dilation - pad_low  # position in the dilated input
  dilated_size = (in_size - 1) * lhs_dilation + 1
  valid = (pos >= 0) & (pos < dilated_size) & (pos % lhs_dilation == 0)
  return int(valid.sum())


def conv_flops(lhs_shape, rhs_shape, out_shape, params: dict) -> int:
  """2 x (output batch x features) x (kernel input features) x (valid taps summed over
  output positions) of one `lax.conv_general_dilated`."""
  lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
  taps = 1
  for i, (lhs_d, rhs_d, out_d) in enumerate(zip(lhs_spec[2:], rhs_spec[2:], out_spec[2:])):
    taps *= _valid_taps(lhs_shape[lhs_d], out_shape[out_d], rhs_shape[rhs_d],
                        params["window_strides"][i], params["padding"][i][0],
                        params["lhs_dilation"][i], params["rhs_dilation"][i])
  out_batch_features = out_shape[out_spec[0]] * out_shape[out_spec[1]]
  kernel_in_features = rhs_shape[rhs_spec[1]]
  return 2 * out_batch_features * kernel_in_features * taps


def _sub_jaxprs(value) -> list:
  if isinstance(value, jex_core.ClosedJaxpr):
    return [value.jaxpr]
  if isinstance(value, jex_core.Jaxpr):
    return [value]
  if isinstance(value, (tuple, list)):
    return [j for v in value for j in _sub_jaxprs(v)]
  return []


def _aligned(env: dict, outer_vars, inner_vars) -> dict:
  """The platform indices among `outer_vars`, renamed to the sub-jaxpr's `inner_vars`."""
  return {inner: env[outer] for outer, inner in zip(outer_vars, inner_vars)
          if isinstance(outer, jex_core.Var) and outer in env}


def _branch_for(platforms: tuple, platform: str) -> int | None:
  """The branch `platform_dependent` lowers for `platform`: platforms holds one tuple of
  names per branch, None for the default branch."""
  for i, names in enumerate(platforms):
    if names is not None and platform in names:
      return i
  defaults = [i for i, names in enumerate(platforms) if names is None]
  return defaults[0] if defaults else None


def _count(jaxpr, env: dict, platform: str) -> Count:
  """env: jaxpr Var -> the `platforms` of the `platform_index` that produced it."""
  total = Count()
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == "platform_index":
      env[eqn.outvars[0]] = eqn.params["platforms"]
    elif name == "dot_general":
      total.dot_general += dot_flops(eqn.invars[0].aval.shape, eqn.invars[1].aval.shape,
                                     eqn.params["dimension_numbers"])
    elif name == "conv_general_dilated":
      total.conv_general_dilated += conv_flops(eqn.invars[0].aval.shape,
                                               eqn.invars[1].aval.shape,
                                               eqn.outvars[0].aval.shape, eqn.params)
    elif name == "cond":
      branches = [b.jaxpr for b in eqn.params["branches"]]
      counts = [_count(b, _aligned(env, eqn.invars[1:], b.invars), platform)
                for b in branches]
      index = eqn.invars[0]
      # Newer jax records the platforms on the cond; older ones only on platform_index.
      platforms = eqn.params.get("branches_platforms") or (
          env.get(index) if isinstance(index, jex_core.Var) else None)
      chosen = _branch_for(platforms, platform) if platforms else None
      if chosen is None:
        chosen = max(range(len(counts)), key=lambda i: counts[i].total)
      total.add(counts[chosen])
    elif name == "scan":
      body = eqn.params["jaxpr"].jaxpr
      total.add(_count(body, _aligned(env, eqn.invars, body.invars), platform),
                eqn.params["length"])
    elif name == "while":
      body = eqn.params["body_jaxpr"].jaxpr
      body_vars = eqn.invars[eqn.params["cond_nconsts"]:]
      total.add(_count(body, _aligned(env, body_vars, body.invars), platform))
      total.unknown_trip_loops += 1
    else:
      for value in eqn.params.values():
        for sub in _sub_jaxprs(value):
          inner_env = (_aligned(env, eqn.invars, sub.invars)
                       if len(sub.invars) == len(eqn.invars) else {})
          total.add(_count(sub, inner_env, platform))
  return total


def _without_dead_code(jaxpr):
  """The jaxpr without equations whose results nothing uses, as XLA would drop them
  (e.g. the primal conv of a `jax.vjp` whose output is discarded). Uses JAX's own
  dead-code pass; where a JAX version lacks it, the jaxpr is counted as it is."""
  try:
    from jax._src.interpreters import partial_eval as pe  # pylint: disable=import-outside-toplevel
    return pe.dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars), instantiate=True)[0]
  except (ImportError, AttributeError, TypeError):
    return jaxpr


def count_jaxpr(closed_jaxpr, platform: str = "cuda") -> Count:
  """The FLOPs of a ClosedJaxpr, as lowered for `platform`."""
  return _count(_without_dead_code(closed_jaxpr.jaxpr), {}, platform)


def count(fn: Callable, *args: Any, platform: str = "cuda", **kwargs: Any) -> Count:
  """The FLOPs of one call of `fn` (jitted or not) on arguments of these shapes; the
  arguments may be arrays or `jax.ShapeDtypeStruct`s. Nothing runs."""
  return count_jaxpr(jax.make_jaxpr(fn)(*args, **kwargs), platform)
