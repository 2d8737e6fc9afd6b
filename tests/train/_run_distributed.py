"""Helper run in subprocesses: 3 train steps of martinez:tiny (with flips), then an
evaluation whose two process shards hold unequal batch counts; saves this process's copy
of the params, its first flip mask and the evaluation's errors to an .npz.

  python tests/train/_run_distributed.py multi PROCESS_ID PORT TFDS_DIR OUT.npz
      one of 2 processes joined by jax.distributed (gloo on CPU); each reads its own
      shard of the frames, as `make_dataset` shards by process. TFDS_DIR may hold no
      dataset yet: process 0 builds it while process 1 waits.
  python tests/train/_run_distributed.py single - - TFDS_DIR OUT.npz
      one process whose global batch concatenates the same two shards' batches.
"""

import sys

import jax
import numpy as np

import configs
from jpose.data import pipeline
from jpose.evaluate import evaluator
from jpose.train import loop
from jpose import sharding

GLOBAL_BATCH, STEPS = 16, 3


def main():
  mode, process_id, port, tfds_dir, out = sys.argv[1:6]
  config = configs.load("martinez:tiny")
  config.data.data_dir = tfds_dir
  config.train.batch_size = GLOBAL_BATCH
  config.data.flip = True
  if mode == "multi":
    config.distributed.initialize = True
    config.distributed.coordinator_address = f"localhost:{port}"
    config.distributed.num_processes = 2
    config.distributed.process_id = int(process_id)
  sharding.initialize_distributed(config)
  exp = loop.build_experiment(config)
  state = exp.init_state()
  step = loop.compile_train_step(exp)
  keys = exp.trainer.batch_keys

  def shard(index, count, batch):
    return pipeline.make_iterator(pipeline.make_dataset(
        exp.train_data, exp.stats, batch, seed=config.seed, flip=config.data.flip,
        shard_index=index, shard_count=count, indices_only=True))

  if mode == "multi":  # the loop's own input: this process's shard, half the batch.
    local = exp.trainer.train_dataset(exp.train_data, exp.stats,
                                      sharding.per_process_batch(GLOBAL_BATCH), config.seed)
    iterators = [pipeline.make_iterator(local)]
  else:
    iterators = [shard(i, 2, GLOBAL_BATCH // 2) for i in range(2)]
  flips = None
  for _ in range(STEPS):
    parts = [loop.next_batches(it, keys, 1) for it in iterators]
    batch = {k: np.concatenate([p[k] for p in parts], axis=1) for k in keys}
    flips = batch["flip"][0] if flips is None else flips
    state, metrics = step(state, sharding.to_global(exp.mesh, batch, stacked=True), exp.resident)
  # An odd number of eval frames with a per-process batch of half of them (rounded
  # down): process 0's shard needs one batch more than process 1's.
  stride = next(s for s in range(5, 50) if len(range(0, exp.eval_data.num_frames, s)) % 2)
  total = len(range(0, exp.eval_data.num_frames, stride))
  acc = evaluator.FrameEvaluator(exp.trainer.predict, exp.trainer.predict_keys, exp.eval_data,
                                 2 * (total // 2), exp.mesh, dataset="h36m",
                                 split="test").run(state, frame_stride=stride, progress=False)
  leaves, _ = jax.tree.flatten_with_path(state.params)
  arrays = {jax.tree_util.keystr(path): np.asarray(leaf.addressable_data(0))
            for path, leaf in leaves}
  np.savez(out, step=np.asarray(state.step.addressable_data(0)), flips=flips,
           eval_frames=acc.frame_count(), eval_mpjpe=acc.summary("mpjpe")["frame_wise_mean"],
           **arrays)
  print(f"process {jax.process_index()} of {jax.process_count()}: "
        f"{jax.device_count()} devices, loss {float(metrics['loss'][0]):.6f}")


if __name__ == "__main__":
  main()
