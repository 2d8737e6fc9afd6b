"""Evaluation reads what the checkpoint was trained with, averages flips when asked, and
keeps every process's batches in step."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.data import pipeline
from jpose.evaluate import evaluator
from jpose.train import checkpointing
from jpose.train import config_check
from jpose.train import loop


def test_eval_mode_normalises_with_the_checkpoints_statistics(tiny_config, tmp_path):
  trained = tiny_config("martinez", num_steps=3)
  loop.train_and_evaluate(trained, str(tmp_path), evaluate_at_end=False)
  # The same checkpoint evaluated under a config whose own train split (5 sequences)
  # has other statistics.
  other = tiny_config("martinez", num_steps=3)
  other.data.max_sequences = 5
  results = loop.evaluate_checkpoint(other, str(tmp_path))
  exp_trained = loop.build_experiment(trained, need_train=False)
  exp_other = loop.build_experiment(other, need_train=False)
  state, _ = checkpointing.Checkpointer(str(tmp_path), 3, read_only=True).restore(
      exp_trained.abstract_state)
  assert not np.allclose(exp_other.stats.mean_2d, np.asarray(state.norm.mean_2d))
  # Reference: the trained run's own trainer (built from the statistics it trained with)
  # on the other config's test split.
  reference = evaluator.evaluate(exp_trained.trainer, state, exp_other.eval_data,
                                 other.eval.batch_size, exp_trained.mesh).summary("mpjpe")
  assert results["protocol1"]["frame_wise_mean"] == pytest.approx(
      reference["frame_wise_mean"], rel=1e-6)


def _flip_2d(pose_2d, cx):
  return pipeline.flip_pose_2d(pose_2d, cx[:, None])


def test_lifter_flip_test_averages_the_mirrored_prediction(tiny_config, synthetic_train):
  config = tiny_config("martinez")
  config.eval.flip_test = True
  exp = loop.build_experiment(config, need_train=False)
  state = exp.init_state()
  batch = pipeline.make_dataset(synthetic_train, pipeline.compute_norm_stats(synthetic_train),
                                8, train=False)[0]
  inputs = {k: jnp.asarray(batch[k]) for k in exp.trainer.predict_keys}
  averaged = np.asarray(evaluator.predict_frames(exp.trainer, state, inputs))
  # By hand, with the host pipeline's numpy mirrors.
  plain = np.asarray(exp.trainer.predict(state, inputs))
  mirrored_input = {**inputs, "pose_2d": jnp.asarray(_flip_2d(batch["pose_2d"],
                                                               batch["camera_c"][:, 0]))}
  mirrored = pipeline.flip_pose_3d(np.asarray(exp.trainer.predict(state, mirrored_input)))
  # float32 round-off of the two means: measured 0 difference; 1e-5 mm is a bound.
  np.testing.assert_allclose(averaged, (plain + mirrored) / 2, atol=1e-5)
  assert np.abs(averaged - plain).max() > 1.0  # the option is not ignored (mm)


def test_vae_rejects_detections_without_neck():
  import configs
  config = configs.load("vae_unsupervised:tiny")
  config.data.input_2d = "sh"
  with pytest.raises(ValueError, match=r"config.data.input_2d='sh'.*Neck/Nose"):
    config_check.validate(config)


def test_unequal_eval_shards_yield_equal_batch_counts(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  stride = 7 if len(range(0, synthetic_train.num_frames, 7)) % 2 else 11
  total = len(range(0, synthetic_train.num_frames, stride))
  assert total % 2 == 1  # shard 0 holds one frame more than shard 1
  batch = total // 2  # so shard 0 needs 2 batches and shard 1 only 1
  shards = [list(pipeline.make_dataset(synthetic_train, stats, batch, train=False,
                                       frame_stride=stride, shard_index=i, shard_count=2))
            for i in range(2)]
  assert len(shards[0]) == len(shards[1]) == 2
  assert shards[1][1]["valid"].sum() == 0  # the padding batch is all masked
  seen = np.sort(np.concatenate([b["frame_index"][b["valid"]] + synthetic_train.starts[
      b["seq_index"][b["valid"]]] for s in shards for b in s]))
  np.testing.assert_array_equal(seen, np.arange(0, synthetic_train.num_frames, stride))


def test_processes_draw_different_flips(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  flips = [pipeline.make_dataset(synthetic_train, stats, 64, flip=True, shard_index=i,
                                 shard_count=2, indices_only=True)[0]["flip"] for i in range(2)]
  assert 10 < flips[0].sum() < 54 and 10 < flips[1].sum() < 54
  assert (flips[0] != flips[1]).any()
