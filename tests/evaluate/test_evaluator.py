"""Evaluation reads what the checkpoint was trained with, averages flips when asked, and
keeps every process's batches in step."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.data import pipeline
from jpose.evaluate import evaluator
from jpose.geometry import skeleton
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
  trainer = exp_trained.trainer
  reference = evaluator.FrameEvaluator(
      trainer.predict, trainer.predict_keys, exp_other.eval_data, other.eval.batch_size,
      exp_trained.mesh, dataset="h36m", split="test").run(state).summary("mpjpe")
  assert results["protocol1"]["frame_wise_mean"] == pytest.approx(
      reference["frame_wise_mean"], rel=1e-6)


def test_lifter_flip_test_averages_the_mirrored_prediction(tiny_config, synthetic_train):
  config = tiny_config("martinez")
  config.eval.flip_test = True
  exp = loop.build_experiment(config, need_train=False)
  state = exp.init_state()
  batch = pipeline.make_dataset(synthetic_train, pipeline.compute_norm_stats(synthetic_train),
                                8, train=False)[0]
  inputs = {k: jnp.asarray(batch[k]) for k in exp.trainer.predict_keys}
  averaged = np.asarray(loop.build_evaluator(exp).predict_fn(state, inputs))
  # By hand: the plain prediction and the mirrored input's prediction, mirrored back.
  plain = np.asarray(exp.trainer.predict(state, inputs))
  mirrored_input = {**inputs, "pose_2d": skeleton.mirror(batch["pose_2d"],
                                                         batch["camera_c"][:, 0])}
  mirrored = np.asarray(skeleton.mirror(exp.trainer.predict(state, mirrored_input)))
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


# (subject/action id, root depth): the oracle below errs by (root_depth - 4000) mm in x on
# every joint but the root, so record i's MPJPE is i * 16 / 17 mm.
_IMAGE_RECORDS = [("S9/Walking 1/54138969/000000", 4000.0), ("S9/Walking 1/54138969/000005", 4001.0),
                  ("S9/Eating/54138969/000000", 4002.0), ("S11/Walking/60457274/000000", 4003.0),
                  ("S11/Eating 2/60457274/000000", 4004.0)]


def fake_h36m_image_records(size: int = 64) -> list[bytes]:
  """Serialized h36m_images-layout records with the ids and root depths above."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from jpose.formats import image_records  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  features = image_records.features()
  out = []
  for image_id, depth in _IMAGE_RECORDS:
    pose = rng.normal(0, 300, (17, 3))
    out.append(features.serialize_example(image_records.person_record(
        image=Image.fromarray(rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)),
        image_id=image_id, joints_2d=rng.uniform(100, 200, (17, 2)), visible=np.ones(17),
        pose_3d=pose - pose[0], root_depth=depth, camera_f=np.array([1000.0, 1000.0]),
        camera_c=np.array([150.0, 150.0]), size=size)))
  return out


def _oracle(state, batch):
  del state
  shift = jnp.zeros((17, 3)).at[1:, 0].set(1.0)
  return batch["pose_3d"] + (batch["root_depth"] - 4000.0)[:, None, None] * shift


def _oracle_evaluator(batch_size: int) -> evaluator.ImageEvaluator:
  from jpose.data import image_pipeline  # pylint: disable=g-import-not-at-top
  from jpose import sharding  # pylint: disable=g-import-not-at-top
  return evaluator.ImageEvaluator(_oracle, ("image", "pose_3d", "root_depth"),
                                  image_pipeline.Source("h36m_images", "test"), batch_size,
                                  sharding.make_mesh(), 64)


@pytest.mark.parametrize("stride,actions,subjects", [
    (1, {"Walking": 4 / 3, "Eating": 3.0}, {"S9": 1.0, "S11": 3.5}),
    (2, {"Walking": 0.0, "Eating": 3.0}, {"S9": 1.0, "S11": 4.0})])
def test_image_evaluation_groups_records_by_id(monkeypatch, stride, actions, subjects):
  from jpose.data import image_pipeline  # pylint: disable=g-import-not-at-top
  records = fake_h36m_image_records()
  monkeypatch.setattr(image_pipeline, "open_serialized", lambda *a, **k: records)
  acc = _oracle_evaluator(2).run(None, frame_stride=stride, progress=False)
  per_action = acc.per_action("mpjpe")
  assert set(per_action) == set(actions)
  for name, mean in actions.items():
    assert per_action[name] == pytest.approx(mean * 16 / 17, abs=1e-4)
  for name, mean in acc.per_subject("mpjpe").items():
    assert mean == pytest.approx(subjects[name] * 16 / 17, abs=1e-4)
  assert acc.frame_count() == len(range(0, len(records), stride))


def test_image_evaluation_rejects_ids_without_subject_and_action(monkeypatch):
  from jpose.data import image_pipeline  # pylint: disable=g-import-not-at-top
  records = fake_h36m_image_records()
  monkeypatch.setattr(image_pipeline, "open_serialized", lambda *a, **k: records)
  monkeypatch.setattr(evaluator, "_record_label", lambda image_id: (-1, -1))
  with pytest.raises(ValueError, match="do not name a Human3.6M subject and action"):
    _oracle_evaluator(2).run(None, progress=False)
