"""Helper run in a subprocess: trains a tiny config and prints its losses as JSON.

  python tests/train/_run_tiny.py CONFIG TFDS_DIR STEPS
(XLA_FLAGS may simulate several CPU devices.)
"""

import json
import sys

import jax

import configs
from jpose.train import loop


def main():
  name, tfds_dir, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
  config = configs.load(name)
  config.data.data_dir = tfds_dir
  config.train.num_steps = steps
  exp = loop.build_experiment(config)
  state = exp.init_state()
  step = loop.compile_train_step(exp)
  from jpose.data import pipeline
  from jpose import sharding
  it = pipeline.make_iterator(exp.trainer.train_dataset(
      exp.train_data, exp.stats, sharding.per_process_batch(config.train.batch_size),
      config.seed))
  losses = []
  for _ in range(steps):
    batch = sharding.to_global(exp.mesh, loop.next_batches(it, exp.trainer.batch_keys, 1),
                               stacked=True)
    state, metrics = step(state, batch, exp.resident)
    losses.append(float(metrics["loss"][0]))
  print(json.dumps({"devices": jax.device_count(), "losses": losses}))


if __name__ == "__main__":
  main()
