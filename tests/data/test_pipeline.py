"""The grain pipeline: determinism, restore, windows, flips and normalisation."""

import itertools

import chex
import numpy as np

from jpose.data import pipeline


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_restored_pipeline_yields_identical_batches(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  ds = pipeline.make_dataset(synthetic_train, stats, 32, seed=7, flip=True)
  it = pipeline.make_iterator(ds)
  _take(it, 5)
  state = it.get_state()
  expected = _take(it, 4)
  restored = pipeline.make_iterator(ds)
  restored.set_state(state)
  for a, b in zip(expected, _take(restored, 4)):
    chex.assert_trees_all_equal(a, b)


def test_seed_controls_the_order_and_epochs_differ(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  first = lambda seed: next(pipeline.make_iterator(
      pipeline.make_dataset(synthetic_train, stats, 16, seed=seed)))["frame_index"]
  np.testing.assert_array_equal(first(1), first(1))
  assert not np.array_equal(first(1), first(2))


def test_eval_pass_sees_every_frame_once(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  ds = pipeline.make_dataset(synthetic_train, stats, 1000, train=False)
  seen = np.concatenate([b["frame_index"][b["valid"]] + 10**6 * b["seq_index"][b["valid"]]
                         for b in ds])
  expected = synthetic_train.frame_index + 10**6 * synthetic_train.seq_index
  np.testing.assert_array_equal(np.sort(seen), np.sort(expected))


def test_shards_partition_the_frames(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  parts = []
  for index in range(3):
    ds = pipeline.make_dataset(synthetic_train, stats, 4096, train=False,
                               shard_index=index, shard_count=3)
    parts.append(np.concatenate([b["frame_index"][b["valid"]] + 10**6 * b["seq_index"][b["valid"]]
                                 for b in ds]))
  together = np.concatenate(parts)
  assert len(np.unique(together)) == synthetic_train.num_frames == len(together)


def test_targets_are_root_centred_and_normalised(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  batch = next(pipeline.make_iterator(pipeline.make_dataset(synthetic_train, stats, 64)))
  chex.assert_shape(batch["pose_2d"], (64, 17, 2))
  chex.assert_shape(batch["pose_3d"], (64, 17, 3))
  np.testing.assert_array_equal(batch["pose_3d"][:, 0], 0.0)
  np.testing.assert_allclose(
      pipeline.denormalise(batch["pose_3d_norm"], stats.mean_3d, stats.std_3d),
      batch["pose_3d"], atol=1e-3)
  # Over the whole split, normalised targets have zero mean and unit std per coordinate.
  norm = pipeline.normalise(synthetic_train.pose_3d, stats.mean_3d, stats.std_3d)[:, 1:]
  np.testing.assert_allclose(norm.mean(0), 0.0, atol=1e-3)
  np.testing.assert_allclose(norm.std(0), 1.0, atol=1e-3)


def test_windows_replicate_the_edges(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  ds = pipeline.make_dataset(synthetic_train, stats, 700, train=False, window=27)
  batch = ds[0]  # the first 700 frames: all of sequence 0 (600) and 100 of sequence 1.
  chex.assert_shape(batch["pose_2d"], (700, 27, 17, 2))
  seq0 = synthetic_train.pose_2d[synthetic_train.sequence(0)]
  # Frame 0: 13 copies of frame 0, then frames 0..13.
  np.testing.assert_array_equal(batch["pose_2d"][0, :14], np.repeat(seq0[:1], 14, 0))
  np.testing.assert_array_equal(batch["pose_2d"][0, 13:], seq0[:14])
  # The last frame of sequence 0 never reads into sequence 1.
  np.testing.assert_array_equal(batch["pose_2d"][599, 13:], np.repeat(seq0[-1:], 14, 0))
  # A middle frame is its plain neighbourhood.
  np.testing.assert_array_equal(batch["pose_2d"][300], seq0[287:314])


def test_corrupt_record_file_is_named(tfds_dir, tmp_path):
  import glob
  import shutil
  import pytest
  from jpose.data import datasets
  built = datasets.prepare("synthetic_h36m", tfds_dir)
  copy = tmp_path / "synthetic_h36m" / "1.0.0"
  shutil.copytree(built.data_dir, copy)
  shard = sorted(glob.glob(str(copy / "*test.array_record*")))[0]
  with open(shard, "r+b") as f:  # overwrite the middle of the shard with garbage
    f.seek(10_000)
    f.write(b"\xff" * 200_000)
  with pytest.raises(ValueError, match=r"synthetic_h36m/1.0.0: record \d+ of split 'test' "
                                       r"cannot be read.*--overwrite"):
    pipeline.load_split("synthetic_h36m", "test", data_dir=str(tmp_path))
