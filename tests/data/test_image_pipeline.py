"""The grain image pipeline: batch layout, mixing ratios, determinism, resume, eval padding."""

import io
import os

import chex
import numpy as np
from PIL import Image
import pytest

from jpose.data import datasets
from jpose.data import image_pipeline
from jpose.formats import image_records
from tests.conftest import LSP_IMAGES


@pytest.fixture(scope="module")
def built(image_records_dir):
  return image_records_dir


def _fake_3d_records(count: int, size: int = 256) -> list[bytes]:
  """Serialized records as the h36m_images builder writes them (has_3d = 1)."""
  rng = np.random.default_rng(0)
  features = image_records.features()
  out = []
  for i in range(count):
    image = Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8))
    joints = rng.uniform(100, 200, (17, 2))
    pose = rng.normal(0, 300, (17, 3))
    out.append(features.serialize_example(image_records.person_record(
        image=image, image_id=f"fake/{i}", joints_2d=joints, visible=np.ones(17),
        pose_3d=pose - pose[0], root_depth=4000.0 + i, camera_f=np.array([1000.0, 1000.0]),
        camera_c=np.array([150.0, 150.0]), size=size)))
  return out


def _batches(dataset, n):
  iterator = image_pipeline.make_iterator(dataset, num_threads=0, prefetch=0)
  return [next(iterator) for _ in range(n)]


def test_eval_batches_hold_every_record_in_order_and_pad(built):
  source = image_pipeline.open_source(image_pipeline.Source("lsp", "train"), built)
  records = [source[i] for i in range(len(source))]
  assert len(records) == LSP_IMAGES
  dataset = image_pipeline.make_dataset([image_pipeline.Source("lsp", "train")], 10,
                                        train=False, data_dir=built)
  batches = list(dataset)
  assert len(batches) == 3
  np.testing.assert_array_equal(batches[-1]["valid"], [True] * 4 + [False] * 6)
  for b, batch in enumerate(batches):
    chex.assert_shape(batch["image"], (10, 256, 256, 3))
    assert batch["image"].dtype == np.uint8
    chex.assert_shape([batch["joints_2d"]], (10, 17, 2))
    chex.assert_shape([batch["visible"], ], (10, 17))
    chex.assert_shape([batch["pose_3d"]], (10, 17, 3))
    chex.assert_shape([batch["crop"]], (10, 2, 3))
    chex.assert_shape([batch["camera_f"], batch["camera_c"]], (10, 2))
    chex.assert_shape([batch["has_3d"], batch["root_depth"]], (10,))
    for i in range(10):
      if not batch["valid"][i]:
        continue
      r = records[b * 10 + i]
      # The fast decoder gives Pillow's pixels (both libjpeg-turbo; measured 0 difference).
      pillow = np.asarray(Image.open(io.BytesIO(r["image"])).convert("RGB"))
      assert np.abs(batch["image"][i].astype(int) - pillow).max() <= 1
      np.testing.assert_array_equal(batch["visible"][i], r["visible"])
      np.testing.assert_array_equal(batch["joints_2d"][i], np.nan_to_num(r["joints_2d"]))
      np.testing.assert_array_equal(batch["crop"][i], r["crop"])
    assert (batch["has_3d"] == 0).all() and np.isfinite(batch["joints_2d"]).all()


def test_mixed_batches_follow_the_weights(built):
  sources = [image_pipeline.Source("lsp", weight=0.5), image_pipeline.Source("mpii", weight=0.5),
             image_pipeline.Source("h36m_images/quick", "test", weight=1.0)]
  dataset = image_pipeline.make_dataset(
      sources, 16, seed=3, data_sources=[
          image_pipeline.open_serialized(sources[0], built),
          image_pipeline.open_serialized(sources[1], built), _fake_3d_records(6)])
  batches = _batches(dataset, 8)
  source = np.concatenate([b["source"] for b in batches])
  counts = np.bincount(source, minlength=3)
  # Weights 1/4, 1/4, 1/2 over 128 samples: grain's mix interleaves deterministically.
  assert abs(counts[0] - 32) <= 2 and abs(counts[1] - 32) <= 2 and abs(counts[2] - 64) <= 2, counts
  has_3d = np.concatenate([b["has_3d"] for b in batches])
  np.testing.assert_array_equal(has_3d, source == 2)
  depth = np.concatenate([b["root_depth"] for b in batches])
  assert ((depth >= 4000) == (source == 2)).all()
  pose = np.concatenate([b["pose_3d"] for b in batches])
  assert (pose[source != 2] == 0).all() and (pose[source == 2][:, 0] == 0).all()
  assert (np.abs(pose[source == 2][:, 1:]).sum(-1) > 0).all()  # root-relative, not zeros
  # More draws than records: the 5 MPII people repeat (the stream is repeated).
  assert counts[1] > 5


def test_same_seed_same_batches_and_resume(built):
  sources = [image_pipeline.Source("lsp", weight=1.0), image_pipeline.Source("mpii", weight=1.0)]
  make = lambda seed: image_pipeline.make_dataset(sources, 8, seed=seed, data_dir=built)
  a, b, c = _batches(make(0), 4), _batches(make(0), 4), _batches(make(1), 4)
  for x, y in zip(a, b):
    chex.assert_trees_all_equal(x, y)
  assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))
  iterator = image_pipeline.make_iterator(make(0), num_threads=2, prefetch=2)
  next(iterator), next(iterator)
  state = iterator.get_state()
  resumed = image_pipeline.make_iterator(make(0), num_threads=2, prefetch=2)
  resumed.set_state(state)
  for expected in a[2:]:
    chex.assert_trees_all_equal(next(resumed), expected)


def test_shards_split_the_records(built):
  source = image_pipeline.Source("lsp", "train")
  ids = []
  for shard in range(2):
    dataset = image_pipeline.make_dataset([source], 4, train=False, data_dir=built,
                                          shard_index=shard, shard_count=2)
    ids.append({tuple(c.ravel()) for batch in dataset for c, v in zip(batch["crop"], batch["valid"]) if v})
  assert len(ids[0]) == len(ids[1]) == LSP_IMAGES // 2 and not ids[0] & ids[1]


def test_crop_size_mismatch_and_bad_split_are_named(built):
  dataset = image_pipeline.make_dataset([image_pipeline.Source("lsp")], 4, crop_size=128,
                                        data_dir=built)
  with pytest.raises(ValueError, match=r"expected \(128, 128, 3\).*crop size"):
    _batches(dataset, 1)
  with pytest.raises(ValueError, match="has no 'validation' split"):
    image_pipeline.make_dataset([image_pipeline.Source("lsp", "validation")], 4, data_dir=built)


def test_malformed_record_is_named():
  with pytest.raises(ValueError, match=r"lacks field\(s\) \['image', 'joints_2d'"):
    image_pipeline.parse_record(b"")
