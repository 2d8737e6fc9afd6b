"""VAE lifter modules: parameter counts pinned to the seed thesis's appendix, and shapes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.models import vae


def _params(module, inputs):
  v = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((2, inputs))))
  return jax.tree.map(lambda a: int(np.prod(a.shape)), v["params"])


def _total(tree):
  return sum(jax.tree.leaves(tree))


def test_encoder_counts():
  p = _params(vae.Encoder(), 32)
  assert _total(p["trunk"]["input"]["Dense_0"]) == 33_792  # Linear(32 -> 1024)
  assert p["trunk"]["block_a"]["Dense_0"] == {"kernel": 1_048_576}  # no bias
  assert p["trunk"]["block_b"]["Dense_0"] == {"kernel": 1_048_576}
  assert _total(p["mu"]) == _total(p["log_var"]) == 1024 * 51 + 51
  # 33,792 + 3 BN x 2,048 + 2 x 1,048,576 + 2 x 52,275
  assert _total(p) == 2_241_638


def test_decoder_counts():
  p = _params(vae.Decoder(), 51)
  assert _total(p["trunk"]["input"]["Dense_0"]) == 51 * 1024 + 1024
  assert _total(p["output"]) == 49_200  # Linear(1024 -> 48)
  assert _total(p) == 2_205_744


def test_discriminator_counts():
  p = _params(vae.PoseDiscriminator2D(), 32)
  assert _total(p["input"]) == 33_792
  assert _total(p["output"]) == 1_025  # Linear(1024 -> 1)
  assert all(_total(p[f"block{b}_{i}"]) == 1024 * 1024 + 1024 for b in (0, 1) for i in (0, 1))
  assert _total(p) == 4_233_217


def test_shapes_and_pose_range():
  enc, dec, disc = vae.Encoder(), vae.Decoder(pose_range=3.0), vae.PoseDiscriminator2D()
  x = jax.random.normal(jax.random.key(0), (5, 32))
  ve = enc.init(jax.random.key(1), x)
  mu, log_var = enc.apply(ve, x)
  chex.assert_shape([mu, log_var], (5, 51))
  vd = dec.init(jax.random.key(2), mu)
  # The output layer starts at zero (training starts from zero relative depth) ...
  chex.assert_trees_all_close(dec.apply(vd, mu), jnp.zeros((5, 16, 3)))
  # ... and whatever its weights become, joints stay within +-pose_range.
  params = dict(vd["params"])
  params["output"] = {"kernel": 50.0 * jax.random.normal(jax.random.key(4), (1024, 48)),
                      "bias": jnp.zeros(48)}
  pose = dec.apply({**vd, "params": params}, mu)
  chex.assert_shape(pose, (5, 16, 3))
  assert 2.9 < float(jnp.abs(pose).max()) <= 3.0
  chex.assert_shape(disc.apply(disc.init(jax.random.key(3), x), x), (5, 1))


def test_mish():
  chex.assert_trees_all_close(vae.mish(jnp.asarray([0.0, 1.0])),
                              jnp.asarray([0.0, np.tanh(np.log1p(np.e))]), rtol=1e-6)
