"""Every trainer of the registry is a `protocol.Trainer`, names an evaluator of the loop's
one registry, and provides what that evaluator's factory reads (`EVALUATOR_NEEDS`)."""

import os

import pytest

import configs
from jpose.data import pipeline
from jpose.train import hmr
from jpose.train import loop
from jpose.train import protocol
from jpose.train import registry

CONFIG_NAMES = sorted(f[:-3] for f in os.listdir(os.path.dirname(configs.__file__))
                      if f.endswith(".py") and f not in ("__init__.py", "common.py"))


def test_every_trainer_kind_has_a_config():
  assert {configs.load(f"{name}:tiny").train.trainer for name in CONFIG_NAMES} == set(
      registry.TRAINERS)


def test_the_loop_and_the_protocol_name_the_same_evaluators():
  assert set(loop.EVALUATORS) == set(protocol.EVALUATOR_NEEDS)


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_each_configs_trainer_satisfies_the_protocol(name, small_anny, monkeypatch):
  monkeypatch.setattr(hmr, "load_body_model", lambda config: small_anny)
  config = configs.load(f"{name}:tiny")
  trainer = registry.build(config, pipeline.placeholder_norm_stats(), 1000)
  assert isinstance(trainer, protocol.Trainer), name
  assert isinstance(trainer, protocol.EVALUATOR_NEEDS[trainer.evaluator_name]), (
      name, trainer.evaluator_name)
  assert isinstance(registry.trainer_class(config).reads_sequences, bool)


def test_the_check_fails_on_a_trainer_that_lacks_a_member():
  """The checks above can fail: a trainer without train_step, or without the predict
  function its evaluator reads, is not accepted."""
  config = configs.load("martinez:tiny")
  trainer = registry.build(config, pipeline.placeholder_norm_stats(), 1000)

  class Partial:
    def __init__(self, inner, missing):
      for member in ("config", "reads_sequences", "batch_keys", "evaluator_name", "init",
                     "train_step", "batch_shapes", "resident_data", "train_dataset",
                     "predict_keys", "predict"):
        if member != missing:
          setattr(self, member, getattr(inner, member))
  assert isinstance(Partial(trainer, None), protocol.Trainer)
  assert isinstance(Partial(trainer, None), protocol.FramePredictor)
  assert not isinstance(Partial(trainer, "train_step"), protocol.Trainer)
  assert not isinstance(Partial(trainer, "evaluator_name"), protocol.Trainer)
  assert not isinstance(Partial(trainer, "predict"), protocol.FramePredictor)
