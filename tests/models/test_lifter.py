"""Lifter modules: pinned parameter counts of every config, shapes and max-norm."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.data import lifter_inputs
from jpose.models import lifter
from jpose.models import registry


def _count(module, inputs):
  variables = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((2, inputs))))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables["params"]))


# Martinez: 32 -> 1024, 2 blocks x 2 x (1024 -> 1024) with BN, -> 48.
#   32*1024+1024 + 5*(1024*1024+1024) + 5*2*1024 + 1024*48+48 = 4,291,632
@pytest.mark.parametrize("name, lifter_params, critic_params", [
    ("martinez", 4_291_632, None),
    ("deepbase1", 8_498_224, None),
    ("deepbase2", 8_547_424, None),  # + intermediate head 1024*48+48 = 49,200
    ("gan", 8_498_224, 8_448_001),  # critic: 48 -> 1024, 4 blocks, no BN, -> 1
    ("martinez:tiny", 7_184, None),
    # 13 COCO joints in: 26 inputs, 6 fewer than 32 -> 6 * 1024 fewer weights.
    ("martinez_coco", 4_285_488, None),
])
def test_parameter_counts(name, lifter_params, critic_params):
  config = configs.load(name)
  inputs = 2 * len(lifter_inputs.lifter_joints(config.data.keypoints))
  assert _count(registry.build("lifter", config), inputs) == lifter_params
  if critic_params:
    assert _count(registry.build("pose_critic", config), registry.NUM_LIFTER_OUTPUTS) == critic_params


def test_intermediate_head_and_output_shapes():
  model = registry.build("lifter", configs.load("deepbase2:tiny"))
  variables = model.init(jax.random.key(0), jnp.zeros((4, 32)))
  out = model.apply(variables, jnp.ones((4, 32)))
  chex.assert_shape([out["output"], out["intermediate"]], (4, 48))


def test_max_norm_clips_the_whole_kernel_to_norm_one():
  dense = lifter.MaxNormDense(8, max_norm=1.0, use_bias=False)
  variables = dense.init(jax.random.key(0), jnp.zeros((1, 16)))
  kernel = variables["params"]["kernel"]
  assert float(jnp.linalg.norm(kernel)) > 1.0  # He init is far above norm 1 ...
  x = jnp.eye(16)  # ... but the applied kernel (rows of x @ W) has norm exactly 1.
  chex.assert_trees_all_close(jnp.linalg.norm(dense.apply(variables, x)), 1.0, rtol=1e-5)
  small = {"params": {"kernel": kernel * 1e-3}}
  chex.assert_trees_all_close(dense.apply(small, x), kernel * 1e-3)  # under 1: untouched.
