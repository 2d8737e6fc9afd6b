"""How fast the inputs reach a train step: a config's grain pipeline (batches/s), the image
pipeline's host read + JPEG decode + batching, and the jitted on-device augmentation
(images/s)."""

from __future__ import annotations

import functools
import io
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jpose.data import augment
from jpose.data import image_pipeline
from jpose.data import pipeline
from jpose.train import config_check
from jpose.train import registry


def benchmark_input_pipeline(config, batch_size: int, steps: int) -> dict:
  """Batches/s and samples/s of the config's training input pipeline on its data
  (config.data), iterated as the loop does (grain, with prefetch). For temporal configs
  it also times a host-side gather of whole receptive-field windows, which a pipeline
  without device-resident data would need."""
  config_check.validate(config)
  data = pipeline.load_config_split(config, "train")
  stats = pipeline.compute_norm_stats(data)
  trainer = registry.build(config, stats, num_train_frames=data.num_frames)
  result = {"config": None, "model": "input_pipeline", "batch_size": batch_size,
            "dataset": config.data.name, "train_frames": data.num_frames,
            "batch_keys": list(trainer.batch_keys)}

  def batches_per_s(dataset) -> float:
    iterator = pipeline.make_iterator(dataset, config.data.prefetch)
    next(iterator)  # first batch: the iterator's start-up
    t0 = time.perf_counter()
    for _ in range(steps):
      next(iterator)
    return steps / (time.perf_counter() - t0)

  batches_s = batches_per_s(trainer.train_dataset(data, stats, batch_size, config.seed))
  result.update(batches_per_s=round(batches_s, 1), samples_per_s=round(batches_s * batch_size, 1))
  field = getattr(trainer, "field", None)
  if field:
    windows_s = batches_per_s(pipeline.make_dataset(data, stats, batch_size, seed=config.seed,
                                                    flip=config.data.flip, window=field,
                                                    causal=config.model.causal))
    result.update(receptive_field=field, host_windows_per_s=round(windows_s * batch_size, 1))
  return result


def image_pipeline_throughput(sources: Sequence[image_pipeline.Source], *,
                              batch_size: int = 64, crop_size: int = 256, num_batches: int = 20,
                              num_threads: int = 0, data_dir: str | None = None,
                              manual_dir: str | None = None, seed: int = 0) -> dict[str, float]:
  """Host images/s of the whole image pipeline (`image_pipeline.make_dataset`) and of JPEG
  decoding alone (Pillow vs simplejpeg).

  num_threads=0 measures one core (no prefetch threads): images/s per core. The decoder
  comparison decodes the first `batch_size` records of the first source.
  """
  dataset = image_pipeline.make_dataset(sources, batch_size, seed=seed, crop_size=crop_size,
                                        data_dir=data_dir, manual_dir=manual_dir,
                                        shard_index=0, shard_count=1)
  iterator = image_pipeline.make_iterator(dataset, num_threads=num_threads,
                                          prefetch=num_threads and 4)
  next(iterator)  # first batch: opens files, warms caches
  start = time.perf_counter()
  for _ in range(num_batches):
    next(iterator)
  pipeline_s = time.perf_counter() - start
  data = image_pipeline.open_source(sources[0], data_dir, manual_dir)
  jpegs = [data[i]["image"] for i in range(min(len(data), batch_size))]
  timings = {}
  for name, decode in (("pillow", lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))),
                       ("simplejpeg", image_pipeline.decode_jpeg)):
    for b in jpegs[:4]:
      decode(b)
    start = time.perf_counter()
    for _ in range(max(1, 512 // len(jpegs))):
      for b in jpegs:
        decode(b)
    timings[name] = (time.perf_counter() - start) / (max(1, 512 // len(jpegs)) * len(jpegs))
  return {
      "images_per_s": num_batches * batch_size / pipeline_s,
      "threads": float(num_threads),
      "batch_size": float(batch_size),
      "crop_size": float(crop_size),
      "decode_pillow_images_per_s": 1.0 / timings["pillow"],
      "decode_simplejpeg_images_per_s": 1.0 / timings["simplejpeg"],
  }


def benchmark_image_pipeline(dataset: str, batch_size: int, steps: int, crop_size: int = 256,
                             threads: int = 0, data_dir: str | None = None,
                             manual_dir: str | None = None) -> dict:
  """Host images/s of the image input pipeline (read, parse, JPEG decode, stack) on a
  built image dataset, and of the JPEG decoders alone; threads=0 is one core."""
  result = image_pipeline_throughput(
      [image_pipeline.Source(dataset)], batch_size=batch_size, crop_size=crop_size,
      num_batches=steps, num_threads=threads, data_dir=data_dir, manual_dir=manual_dir)
  return {"model": "image_pipeline", "dataset": dataset, "batch_size": batch_size,
          "size": crop_size, "threads": threads,
          "images_per_s": round(result["images_per_s"], 1),
          "decode_simplejpeg_images_per_s": round(result["decode_simplejpeg_images_per_s"], 1),
          "decode_pillow_images_per_s": round(result["decode_pillow_images_per_s"], 1)}


def augment_throughput(size: int = 256, batch: int = 32,
                       params: augment.AugmentParams = augment.SEED_002,
                       repeats: int = 5) -> float:
  """Images per second of the jitted `augment.augment` (after compilation) on the default
  device, for a (batch, size, size, 3) uint8 batch: the best of `repeats` timed calls."""
  rng = np.random.default_rng(0)
  data = {
      "image": jnp.asarray(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)),
      "joints_2d": jnp.asarray(rng.uniform(0, size, (batch, 17, 2)), jnp.float32),
      "visible": jnp.ones((batch, 17), jnp.float32),
      "pose_3d": jnp.asarray(rng.normal(0, 300, (batch, 17, 3)), jnp.float32),
      "crop": jnp.tile(jnp.eye(2, 3, dtype=jnp.float32), (batch, 1, 1)),
  }
  step = jax.jit(functools.partial(augment.augment, params=params))
  keys = [jax.random.fold_in(jax.random.key(0), i) for i in range(repeats)]
  jax.block_until_ready(step(data, keys[0]))  # compiles.
  best = float("inf")
  for k in keys:
    start = time.perf_counter()
    jax.block_until_ready(step(data, k))
    best = min(best, time.perf_counter() - start)
  return batch / best


def benchmark_augment(size: int, batch_size: int, steps: int) -> dict:
  """images/s of the jitted on-device augmentation (seed 002's ops) of a uint8 batch."""
  rate = augment_throughput(size=size, batch=batch_size, repeats=steps)
  return {"model": "augment", "params": "SEED_002", "batch_size": batch_size, "size": size,
          "images_per_s": round(rate, 1)}
