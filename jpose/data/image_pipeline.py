"""grain input pipeline over the person-crop image datasets (`jpose.formats.image_records`).

The host only reads records, decodes the JPEG crops (simplejpeg, libjpeg-turbo: 1.3-2x
Pillow's speed on 256 px crops here) straight into the batch buffer, and stacks the
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
  silhouette  (B, S, S) float32 {0, 1} (UP-3D's, in LSP records; 0 where has_silhouette = 0)
  has_silhouette (B,) float32
  image_id    (B,) str, the record's id (e.g. 'S9/Walking 1/54138969/000064')
  valid       (B,) bool; False on the padding of a final partial eval batch
"""

from __future__ import annotations

import functools
import io
from typing import NamedTuple, Sequence

import grain
import jax
import numpy as np
from PIL import Image
import simplejpeg
from tensorflow_datasets.proto import tf_example_pb2

from jpose.data import datasets

# Label fields and their per-example shapes, in batch order (image_records' schema).
LABEL_SHAPES = {"joints_2d": (17, 2), "visible": (17,), "pose_3d": (17, 3), "has_3d": (),
                "root_depth": (), "crop": (2, 3), "camera_f": (2,), "camera_c": (2,)}
_LABEL_SIZES = [int(np.prod(s)) for s in LABEL_SHAPES.values()]
_LABEL_SPLITS = np.cumsum(_LABEL_SIZES)[:-1]


class Source(NamedTuple):
  """One dataset in a mixture: registry key (may carry a config), split and weight."""

  name: str
  split: str = "train"
  weight: float = 1.0


def open_source(source: Source, data_dir: str | None = None, manual_dir: str | None = None):
  """The split's random-access source of parsed records (dicts), building it if missing."""
  builder = datasets.prepare(source.name, data_dir, manual_dir)
  if source.split not in builder.info.splits:
    raise ValueError(f"dataset '{source.name}' at {builder.data_dir} has no '{source.split}' "
                     f"split (it has {sorted(builder.info.splits)})")
  return builder.as_data_source(split=source.split)


def open_serialized(source: Source, data_dir: str | None = None,
                    manual_dir: str | None = None):
  """The split's random-access source of serialized records (bytes), for `parse_record`."""
  parsed = open_source(source, data_dir, manual_dir)
  # tfds' ArrayRecordDataSource keeps the raw array_record source it parses from.
  if not hasattr(parsed, "data_source"):
    raise TypeError(f"dataset '{source.name}': tfds returned a {type(parsed).__name__} "
                    "without a raw `data_source`; was it built with file_format='array_record'?")
  return parsed.data_source


def parse_record(serialized: bytes) -> tuple[bytes, np.ndarray, str, bytes]:
  """A serialized record -> (JPEG bytes, (114,) float32 labels in LABEL_SHAPES order, id,
  silhouette PNG bytes: b"" where the record has none, as most datasets).

  Reads only the fields a batch needs straight from the tf.train.Example: about 6x
  cheaper than tfds' full per-feature parse, which would cost as much as the decode.
  """
  feature = tf_example_pb2.Example.FromString(serialized).features.feature
  missing = [k for k in ("image", *LABEL_SHAPES) if k not in feature]
  if missing:
    raise ValueError(f"a record lacks field(s) {missing} of the image_records schema "
                     f"(it has {sorted(feature)})")
  jpeg = feature["image"].bytes_list.value[0]
  labels = np.concatenate([np.asarray(feature[k].float_list.value, np.float32)
                           for k in LABEL_SHAPES])
  if labels.shape != (sum(_LABEL_SIZES),):
    raise ValueError(f"a record's label fields hold {labels.size} values, expected "
                     f"{sum(_LABEL_SIZES)} ({LABEL_SHAPES})")
  image_id = feature["image_id"].bytes_list.value[0].decode() if "image_id" in feature else ""
  silhouette = b""
  if "silhouette" in feature and feature["silhouette"].bytes_list.value:
    silhouette = feature["silhouette"].bytes_list.value[0]
  return jpeg, labels, image_id, silhouette


class _EpochShuffled:
  """Random access to `records` in a fresh seeded order each epoch, repeating forever.

  Our own permutation per epoch (as `jpose.data.pipeline` does for frames) rather than
  grain's `shuffle`: its per-element index shuffle costs 85 us at 400 records and 6 ms
  at 5 records on this CPU, more than decoding the image.
  """

  def __init__(self, records, ids: np.ndarray, seed: int):
    self.records, self.ids, self.seed = records, ids, seed

  def __len__(self) -> int:
    return len(self.ids) * 10**9

  @functools.lru_cache(maxsize=2)
  def _order(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self.seed, epoch]).permutation(self.ids)

  def __getitem__(self, index: int):
    epoch, position = divmod(int(index), len(self.ids))
    return self.records[int(self._order(epoch)[position])]


class InOrder:
  """Random access to `records` at the given ids (a subset, in any order), once."""

  def __init__(self, records, ids: np.ndarray):
    self.records, self.ids = records, ids

  def __len__(self) -> int:
    return len(self.ids)

  def __getitem__(self, index: int):
    return self.records[int(self.ids[index])]


class _Parse:
  """Serialized record -> (JPEG bytes, labels, id, silhouette PNG, source index); runs per
  element."""

  def __init__(self, source_index: int):
    self.source_index = source_index

  def __call__(self, serialized: bytes) -> tuple:
    return (*parse_record(serialized), self.source_index)


def decode_silhouette(data: bytes, size: int) -> np.ndarray:
  """A record's silhouette PNG -> (size, size) float32 {0, 1}."""
  mask = np.asarray(Image.open(io.BytesIO(data)).convert("L")) >= 128
  if mask.shape != (size, size):
    raise ValueError(f"a record's silhouette decodes to {mask.shape}, expected ({size}, {size})")
  return mask.astype(np.float32)


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
    silhouettes = np.zeros((b, s, s), np.float32)
    valid = np.zeros(b, bool)
    # Pad a final partial batch by repeating its last element, marked invalid.
    padded = list(elements) + [elements[-1]] * (b - len(elements))
    valid[:len(elements)] = True
    for i, (jpeg, *_) in enumerate(padded):
      try:
        shape = decode_jpeg(jpeg, images[i]).shape
      except ValueError as e:  # simplejpeg: buffer too small, or a damaged JPEG
        shape = str(e)
      if shape != (s, s, 3):
        raise ValueError(f"a record's image decodes to {shape}, expected ({s}, {s}, 3); mixed "
                         "datasets must share one crop size (image_pipeline crop_size)")
    has_silhouette = np.array([bool(e[3]) for e in padded], np.float32)
    for i in np.flatnonzero(has_silhouette):
      silhouettes[i] = decode_silhouette(padded[i][3], s)
    flat = np.split(np.stack([e[1] for e in padded]), _LABEL_SPLITS, axis=1)
    labels = {k: x.reshape((b,) + shape) for (k, shape), x in zip(LABEL_SHAPES.items(), flat)}
    labels["joints_2d"] = np.where(labels["visible"][..., None] > 0,
                                   np.nan_to_num(labels["joints_2d"]), 0.0).astype(np.float32)
    return {"image": images, **labels, "silhouette": silhouettes,
            "has_silhouette": has_silhouette,
            "source": np.array([e[4] for e in padded], np.int32),
            "image_id": np.array([e[2] for e in padded]), "valid": valid}


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
  `data_sources` replaces the opened datasets (same order as `sources`): random-access
  sequences of serialized records, e.g. for tests.
  """
  shard_index = jax.process_index() if shard_index is None else shard_index
  shard_count = jax.process_count() if shard_count is None else shard_count
  if not sources:
    raise ValueError("image pipeline: no sources")
  if not train and len(sources) != 1:
    raise ValueError("image pipeline: evaluation reads one source at a time")
  if data_sources is None:
    data_sources = [open_serialized(s, data_dir, manual_dir) for s in sources]
  streams = []
  for k, (source, data) in enumerate(zip(sources, data_sources)):
    ids = np.arange(len(data))[shard_index::shard_count]
    if len(ids) == 0:
      raise ValueError(f"image pipeline: '{source.name}' split '{source.split}' has no records "
                       f"for shard {shard_index} of {shard_count}")
    if train:
      # A per-source seed, so adding a source does not reorder the others.
      records = _EpochShuffled(data, ids, int(np.random.default_rng([seed, k]).integers(2**31)))
    else:
      records = InOrder(data, ids)
    streams.append(grain.MapDataset.source(records).map(_Parse(k)))
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
