"""grain input pipeline over the person-crop image datasets (`jpose.data.image_records`).

The host only reads records, decodes the JPEG crops (simplejpeg, libjpeg-turbo: about
1.3x Pillow's speed on 256 px crops here) straight into the batch buffer, and stacks the
labels; augmentation runs on the device. Several datasets mix at configured weights
(grain's `MapDataset.mix` over per-dataset shuffled, repeated streams), so a batch holds
e.g. half Human3.6M frames and half MPII people, the 2D-only ones with has_3d = 0. The
order is a pure function of the seed, and the iterator's position can be saved and
restored (`get_state` / `set_state`), as in `jpose.data.pipeline`.

Batch dict (B = batch, S = crop size), the image-half conventions:
  image       (B, S, S, 3) uint8
  joints_2d   (B, 17, 2) float32 crop pixels (0 where not visible)
  visible     (B, 17) float32 {0, 1}
  pose_3d     (B, 17, 3) float32 camera frame, root-relative, mm (0 where has_3d = 0)
  has_3d, root_depth (B,) float32
  crop        (B, 2, 3) float32 original pixels -> crop pixels
  camera_f, camera_c (B, 2) float32 (0 where unknown)
  source      (B,) int32 index into the `sources` the dataset was made from
  valid       (B,) bool; False on the padding of a final partial eval batch
"""

from __future__ import annotations

import time
from typing import NamedTuple, Sequence

import grain
import jax
import numpy as np
import simplejpeg

from jpose.data import datasets

LABEL_FIELDS = ("joints_2d", "visible", "pose_3d", "has_3d", "root_depth", "crop",
                "camera_f", "camera_c")


class Source(NamedTuple):
  """One dataset in a mixture: registry key (may carry a config), split and weight."""

  name: str
  split: str = "train"
  weight: float = 1.0


def open_source(source: Source, data_dir: str | None = None, manual_dir: str | None = None):
  """The split's random-access data source, building the dataset first if it is missing."""
  builder = datasets.prepare(source.name, data_dir, manual_dir)
  if source.split not in builder.info.splits:
    raise ValueError(f"dataset '{source.name}' at {builder.data_dir} has no '{source.split}' "
                     f"split (it has {sorted(builder.info.splits)})")
  return builder.as_data_source(split=source.split)


class _Labels:
  """Record -> (JPEG bytes, label arrays, source index); cheap, runs per element."""

  def __init__(self, source_index: int):
    self.source_index = source_index

  def __call__(self, record: dict) -> tuple:
    return (record["image"], tuple(record[k] for k in LABEL_FIELDS), self.source_index)


def decode_jpeg(data: bytes, out: np.ndarray | None = None) -> np.ndarray:
  """JPEG bytes -> (H, W, 3) uint8 RGB, written into `out` when given."""
  return simplejpeg.decode_jpeg(data, colorspace="RGB", buffer=out)


class _DecodeBatch:
  """grain batch_fn: decodes B crops into one (B, S, S, 3) buffer and stacks the labels."""

  def __init__(self, batch_size: int, crop_size: int):
    self.batch_size, self.crop_size = batch_size, crop_size

  def __call__(self, elements: Sequence[tuple]) -> dict[str, np.ndarray]:
    b, s = self.batch_size, self.crop_size
    images = np.empty((b, s, s, 3), np.uint8)
    valid = np.zeros(b, bool)
    # Pad a final partial batch by repeating its last element, marked invalid.
    padded = list(elements) + [elements[-1]] * (b - len(elements))
    valid[:len(elements)] = True
    for i, (jpeg, _, _) in enumerate(padded):
      try:
        shape = decode_jpeg(jpeg, images[i]).shape
      except ValueError as e:  # simplejpeg: buffer too small, or a damaged JPEG
        shape = str(e)
      if shape != (s, s, 3):
        raise ValueError(f"a record's image decodes to {shape}, expected ({s}, {s}, 3); mixed "
                         "datasets must share one crop size (image_pipeline crop_size)")
    labels = {k: np.stack([np.asarray(e[1][j], np.float32) for e in padded])
              for j, k in enumerate(LABEL_FIELDS)}
    labels["joints_2d"] = np.where(labels["visible"][..., None] > 0,
                                   np.nan_to_num(labels["joints_2d"]), 0.0).astype(np.float32)
    return {"image": images, **labels,
            "source": np.array([e[2] for e in padded], np.int32), "valid": valid}


def make_dataset(sources: Sequence[Source], batch_size: int, *, seed: int = 0,
                 train: bool = True, crop_size: int = 256, data_dir: str | None = None,
                 manual_dir: str | None = None, shard_index: int | None = None,
                 shard_count: int | None = None, data_sources: Sequence | None = None
                 ) -> grain.MapDataset:
  """A grain MapDataset of image batch dicts.

  train=True: each source is shuffled anew every epoch from `seed` and repeated; the
  sources mix at their weights; full batches forever. train=False: one source, every
  record once in order, the last batch padded (see `valid`). Records are sharded per
  process (default: this JAX process) and `batch_size` is the per-process batch.
  `data_sources` replaces the opened datasets (same order as `sources`), e.g. for tests.
  """
  shard_index = jax.process_index() if shard_index is None else shard_index
  shard_count = jax.process_count() if shard_count is None else shard_count
  if not sources:
    raise ValueError("image pipeline: no sources")
  if not train and len(sources) != 1:
    raise ValueError("image pipeline: evaluation reads one source at a time")
  if data_sources is None:
    data_sources = [open_source(s, data_dir, manual_dir) for s in sources]
  streams = []
  for k, (source, data) in enumerate(zip(sources, data_sources)):
    ds = grain.MapDataset.source(data)[shard_index::shard_count]
    if len(ds) == 0:
      raise ValueError(f"image pipeline: '{source.name}' split '{source.split}' has no records "
                       f"for shard {shard_index} of {shard_count}")
    if train:
      # A per-source seed, so adding a source does not reorder the others.
      ds = ds.shuffle(seed=int(np.random.default_rng([seed, k]).integers(2**31))).repeat()
    streams.append(ds.map(_Labels(k)))
  if train:
    weights = [float(s.weight) for s in sources]
    if min(weights) < 0 or sum(weights) <= 0:
      raise ValueError(f"image pipeline: source weights {weights} must be >= 0, not all 0")
    mixed = streams[0] if len(streams) == 1 else grain.MapDataset.mix(streams, weights)
  else:
    mixed = streams[0]
  return mixed.batch(batch_size, drop_remainder=train,
                     batch_fn=_DecodeBatch(batch_size, crop_size))


def make_iterator(dataset: grain.MapDataset, num_threads: int = 2,
                  prefetch: int = 4) -> grain.DatasetIterator:
  """An iterator whose position can be saved (`get_state`) and restored (`set_state`).

  Each thread assembles whole batches; simplejpeg releases the GIL while decoding, so
  threads scale with host cores.
  """
  options = grain.ReadOptions(num_threads=num_threads if prefetch else 0,
                              prefetch_buffer_size=prefetch)
  return iter(dataset.to_iter_dataset(read_options=options))


def measure_throughput(sources: Sequence[Source], *, batch_size: int = 64, crop_size: int = 256,
                       num_batches: int = 20, num_threads: int = 0, data_dir: str | None = None,
                       manual_dir: str | None = None, seed: int = 0) -> dict[str, float]:
  """Host images/s of the whole pipeline and of JPEG decoding alone (Pillow vs simplejpeg).

  num_threads=0 measures one core (no prefetch threads): images/s per core. The decoder
  comparison runs on the first batch's own records.
  """
  from PIL import Image
  import io

  dataset = make_dataset(sources, batch_size, seed=seed, crop_size=crop_size,
                         data_dir=data_dir, manual_dir=manual_dir, shard_index=0, shard_count=1)
  iterator = make_iterator(dataset, num_threads=num_threads, prefetch=num_threads and 4)
  next(iterator)  # first batch: opens files, warms caches
  start = time.perf_counter()
  for _ in range(num_batches):
    next(iterator)
  pipeline_s = time.perf_counter() - start
  data = open_source(sources[0], data_dir, manual_dir)
  jpegs = [data[i]["image"] for i in range(min(len(data), batch_size))]
  timings = {}
  for name, decode in (("pillow", lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))),
                       ("simplejpeg", decode_jpeg)):
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
