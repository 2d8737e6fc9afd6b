"""`--config.body.model=smpl --config.body.path=...`: the HMR trainer on an SMPL-format
file (the tests' chumpy pickle on the real SMPL template topology, conftest.py)."""

import jax
import jax.numpy as jnp
import numpy as np

import configs
from jpose.train import hmr


def test_hmr_trains_on_an_smpl_file(smpl_pkl_path):
  config = configs.load("hmr_hybrid:tiny")
  config.body.model = "smpl"
  config.body.path = smpl_pkl_path
  trainer = hmr.HmrTrainer(config)
  assert trainer.body.num_vertices == 6890 and trainer.body.num_joints == 24
  resident = trainer.resident_data()
  state = jax.jit(trainer.init)(jax.random.key(0))
  batch = {"index": jnp.arange(4, dtype=jnp.int32)}
  images = jax.jit(trainer.train_images)(state, resident, batch)
  assert 0 < float(jnp.mean(images["silhouette"])) < 1  # a body, not an empty or full crop
  _, metrics = jax.jit(trainer.train_step)(state, batch, resident)
  for key in ("loss", "kpr", "mr", "critic_wasserstein"):
    assert np.isfinite(float(metrics[key])), key
