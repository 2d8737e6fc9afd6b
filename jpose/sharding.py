"""One device mesh for every run: the batch is split on the 'data' axis, the state is
replicated. The same code runs on 1 CPU, 8 GPUs or a multi-host TPU slice.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

DATA_AXIS = "data"


def initialize_distributed(config) -> None:
  """jax.distributed.initialize() from config.distributed, when it asks for it. Every
  process then sees the global device list; on CPU the collectives use gloo."""
  d = config.distributed
  if not d.initialize:
    return
  jax.distributed.initialize(coordinator_address=d.coordinator_address or None,
                             num_processes=d.num_processes or None,
                             process_id=d.process_id if d.process_id >= 0 else None)


def make_mesh() -> Mesh:
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def check_batch_size(global_batch: int, field: str = "train.batch_size") -> None:
  devices = jax.device_count()
  if global_batch % devices:
    raise ValueError(f"{field}={global_batch} must be divisible by the {devices} devices "
                     "it is split over")


def per_process_batch(global_batch: int) -> int:
  """The part of the global batch that this process's input pipeline produces."""
  check_batch_size(global_batch)
  return global_batch // jax.process_count()


def stacked_batch_sharding(mesh: Mesh) -> NamedSharding:
  """k batches stacked on a leading steps axis (one dispatch of k train steps)."""
  return NamedSharding(mesh, P(None, DATA_AXIS))


def to_global(mesh: Mesh, local_batch: dict[str, np.ndarray],
              stacked: bool = False) -> dict[str, jax.Array]:
  """Assembles each process's local batch into global arrays sharded on 'data' (on the
  second axis where `stacked` batches carry a leading steps axis)."""
  sharding = stacked_batch_sharding(mesh) if stacked else batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def host_global_to_device(mesh: Mesh, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
  """Shards a batch that every process holds in full (e.g. evaluation chunks)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_callback(v.shape, sharding, lambda index, v=v: v[index])
          for k, v in batch.items()}


def replicate(mesh: Mesh, tree):
  """Puts a host pytree on every device (e.g. device-resident datasets)."""
  return jax.device_put(tree, replicated(mesh))
