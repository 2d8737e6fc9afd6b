"""AMSGrad with PyTorch's semantics (VideoPose3D's optimizer), against its update
written out in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jpose.train import optimizers


def _torch_amsgrad_reference(grads, lr, b1=0.9, b2=0.999, eps=1e-8):
  """torch.optim.Adam(amsgrad=True).step, in float64 numpy: each step's parameter change."""
  m, v, v_max = 0.0, 0.0, 0.0
  out = []
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    v_max = max(v_max, v)
    denom = np.sqrt(v_max) / np.sqrt(1 - b2**t) + eps
    out.append(-lr / (1 - b1**t) * m / denom)
  return np.array(out)


def _run(optimizer, grads):
  """Each step's update (the parameter change) of `optimizer` on a scalar parameter."""
  params = jnp.zeros(())
  state = optimizer.init(params)
  update = jax.jit(optimizer.update)
  out = []
  for g in grads:
    updates, state = update(jnp.asarray(g, jnp.float32), state, params)
    params = optax.apply_updates(params, updates)
    out.append(float(updates))
  return np.array(out)


def test_amsgrad_follows_pytorch_over_a_shrinking_gradient():
  # Gradient 1 at the first step, then shrinking: optax's maximum of the bias-corrected
  # moment keeps the first step's g^2 as a floor, PyTorch's does not.
  grads = np.concatenate([[1.0], 0.1 * 0.995 ** np.arange(399)])
  reference = _torch_amsgrad_reference(grads, lr=1e-3)
  ours = _run(optimizers.OPTIMIZERS["amsgrad"](1e-3), grads)
  # float32 moments against float64: measured max relative error 1.4e-6 (optax's own
  # f32 bias correction, 1 - 0.999^t, alone costs 1e-5); 2e-5 leaves a 14x margin.
  np.testing.assert_allclose(ours, reference, rtol=2e-5)
  # optax's version takes far smaller late steps (what this optimizer fixes).
  theirs = _run(optimizers.OPTIMIZERS["optax_amsgrad"](1e-3), grads)
  assert abs(ours[-1]) > 5 * abs(theirs[-1])


def test_amsgrad_state_is_per_parameter_and_jit_clean():
  params = {"a": jnp.ones((3,)), "b": jnp.zeros((2, 2))}
  optimizer = optimizers.OPTIMIZERS["amsgrad"](1e-2)
  state = optimizer.init(params)
  grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
  updates, state = jax.jit(optimizer.update)(grads, state, params)
  # First step: m_hat = g, sqrt(v_max)/sqrt(1 - b2) = |g|, so the step is -lr * sign(g).
  np.testing.assert_allclose(updates["a"], -1e-2 * np.ones(3), rtol=1e-5)
  assert int(state[0].count) == 1
