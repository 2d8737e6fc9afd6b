"""How fast people are drawn on the device: the mannequin renderer on synthetic_h36m poses
(`rendered.render_batch`, images/s) and the mesh silhouettes (`render.mesh`, meshes/s)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jpose.bench import timing
from jpose.data import pipeline
from jpose.data import rendered
from jpose.data import resident
from jpose.render import mesh


def benchmark_renderer(size: int, batch_size: int, steps: int,
                       data_dir: str | None = None) -> dict:
  """images/s of `rendered.render_batch` on synthetic_h36m poses (built if missing), a
  fresh random set of frames each call."""
  split = pipeline.load_split("synthetic_h36m", "train", data_dir=data_dir)
  data = jax.device_put(resident.from_sequences(split))
  rng = np.random.default_rng(0)
  args = [(data, jnp.asarray(rng.integers(0, split.num_frames, batch_size), np.int32),
           jax.random.key(i)) for i in range(4)]
  render = jax.jit(lambda d, ids, key: rendered.render_batch(d, ids, key, size=size)["image"])
  return {"model": "renderer", "batch_size": batch_size, "size": size,
          **timing.images_per_s(render, args, batch_size, steps)}


def mesh_throughput(vertices, faces, size: int, batch: int = 8, mode: str = "hard",
                    repeats: int = 5, **kwargs) -> float:
  """Meshes per second, after compilation, on the default device, of the jitted and
  vmapped `mode`: "hard" (`mesh.hard_silhouette`), "soft" (`mesh.soft_silhouette`) or
  "soft_grad" (the soft silhouette's value and vertex gradient of an L2 loss), for `batch`
  copies of one mesh, each shifted a little, framed by a weak-perspective camera so that
  its height fills 90 % of the image. The best of `repeats` timed calls (the CPU here is
  shared). kwargs go to the silhouette function."""
  vertices = jnp.asarray(vertices, jnp.float32)
  faces = jnp.asarray(faces, jnp.int32)
  centre = (vertices.max(0) + vertices.min(0)) / 2
  height = float(vertices[:, 1].max() - vertices[:, 1].min())
  cameras = mesh.WeakPerspective(scale=jnp.full((batch,), 1.8 / height),
                                 translation=jnp.tile(-centre[:2], (batch, 1))
                                 + 0.01 * jnp.arange(batch)[:, None])
  target = jnp.zeros((size, size))

  def one(camera):
    if mode == "hard":
      return mesh.hard_silhouette(vertices, faces, camera, size, **kwargs)
    if mode == "soft":
      return mesh.soft_silhouette(vertices, faces, camera, size, **kwargs)
    if mode == "soft_grad":
      return jax.value_and_grad(lambda v: jnp.sum(
          (mesh.soft_silhouette(v, faces, camera, size, **kwargs) - target)**2))(vertices)
    raise ValueError(f"mode must be 'hard', 'soft' or 'soft_grad', got {mode!r}")

  fn = jax.jit(jax.vmap(one))
  jax.block_until_ready(fn(cameras))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(cameras))
    best = min(best, time.perf_counter() - start)
  return batch / best
