"""HMR's regressor and the seed 001 critic (jpose/models/hmr.py): parameter counts worked
out by hand from the layer sizes, the IEF's start at the mean, and the KCS layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.body import lbs
from jpose.models import hmr
from jpose.models import registry

RESNET50_NO_FC = 23_508_032  # torchvision's resnet50, 25,557,032, less its 2048 x 1000 fc.
RESNET18_NO_FC = 11_176_512  # resnet18's 11,689,512 less its 512 x 1000 fc.


def _regressor_params(features: int, width: int = 1024) -> int:
  # [features, Theta] -> FC width -> FC width -> FC 85, with biases.
  return ((features + 85) * width + width) + (width * width + width) + (width * 85 + 85)


@pytest.mark.parametrize("variant,params", [
    ("", RESNET50_NO_FC + _regressor_params(2048)),  # 26,829,973
    ("cpu", RESNET18_NO_FC + _regressor_params(512))])  # 12,925,589
def test_hmr_net_parameter_counts(variant, params):
  config = configs.load("hmr_hybrid" + (f":{variant}" if variant else ""))
  net = registry.build("hmr_net", config)
  size = config.data.crop_size
  shapes = jax.eval_shape(lambda: net.init(jax.random.key(0), jnp.zeros((1, size, size, 3)),
                                           jnp.zeros(85)))
  assert sum(x.size for x in jax.tree.leaves(shapes["params"])) == params


def test_critic_parameter_count():
  """HMR's pose stream (9 -> 32 -> 32 per joint, 23 x Dense(1), 736 -> 1024 -> 1024 -> 1),
  KCS (23^2 -> 1024 -> 1024 -> 1), shape (10 -> 10 -> 5 -> 1) and the 26 -> 1 mix."""
  pose = (9 * 32 + 32) + (32 * 32 + 32) + 23 * (32 + 1) + (736 * 1024 + 1024) + (
      1024 * 1024 + 1024) + (1024 + 1)
  kcs = (529 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 + 1)
  shape = (10 * 10 + 10) + (10 * 5 + 5) + (5 + 1)
  critic = registry.build("hmr_critic", configs.load("hmr_hybrid"))
  shapes = jax.eval_shape(lambda: critic.init(jax.random.key(0), jnp.zeros((1, 23, 3, 3)),
                                              jnp.zeros((1, 23, 3)), jnp.zeros((1, 10))))
  assert sum(x.size for x in jax.tree.leaves(shapes["params"])) == pose + kcs + shape + 27


def test_iterations_start_at_the_mean_with_a_small_last_layer():
  net = hmr.HmrNet(resnet_depth=18, iterations=3, width=64, dropout=0.0)
  mean = jnp.asarray(np.random.default_rng(0).normal(size=85), jnp.float32)
  images = jax.random.uniform(jax.random.key(1), (2, 64, 64, 3))
  variables = net.init(jax.random.key(0), images, mean)
  thetas = net.apply(variables, images, mean)
  assert thetas.shape == (2, 3, 85) and thetas.dtype == jnp.float32
  # Each iteration moves Theta, starting from the mean.
  steps = np.abs(np.diff(np.concatenate([np.broadcast_to(mean, (2, 1, 85)), thetas], 1), axis=1))
  assert np.all(steps.max(axis=-1) > 0)
  # HMR's small Xavier: uniform on +-sqrt(3 * 0.01 / fan_avg), fan_avg = (64 + 85) / 2.
  kernel = np.asarray(variables["params"]["regressor"]["delta"]["kernel"])
  limit = np.sqrt(3 * 0.01 / ((64 + 85) / 2))
  assert np.abs(kernel).max() <= limit
  np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3), rtol=0.05)  # 5,440 draws: ~1%.
  camera, pose, betas = hmr.split_theta(thetas[:, -1])
  assert camera.shape == (2, 3) and pose.shape == (2, 24, 3) and betas.shape == (2, 10)


def test_kinematic_chain_space_is_rotation_invariant():
  bones = jax.random.normal(jax.random.key(0), (4, 23, 3))
  rotation = lbs.rodrigues(jnp.array([0.4, -2.0, 1.1]))
  psi = hmr.kinematic_chain_space(bones)
  np.testing.assert_allclose(np.asarray(hmr.kinematic_chain_space(bones @ rotation.T)),
                             np.asarray(psi), atol=1e-5)
  np.testing.assert_allclose(np.diagonal(np.asarray(psi), axis1=1, axis2=2),
                             np.sum(np.asarray(bones)**2, -1), rtol=1e-6)


def test_critic_scores_one_number_per_sample():
  critic = hmr.HmrCritic(conv_features=8, pose_width=16, kcs_width=16)
  inputs = (jnp.tile(jnp.eye(3), (5, 23, 1, 1)), jnp.ones((5, 23, 3)), jnp.zeros((5, 10)))
  params = critic.init(jax.random.key(0), *inputs)
  scores = critic.apply(params, *inputs)
  assert scores.shape == (5,)
  np.testing.assert_allclose(np.asarray(scores), np.asarray(scores)[0])  # equal inputs.
