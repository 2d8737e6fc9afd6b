"""The integral trainer end to end on tiny configs: rendered and recorded images train,
evaluate with poses.png, resume exactly, and the heatmap term switches on at its step."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.data import augment
from jpose.data import pipeline
from jpose.geometry import skeleton
from jpose.losses import integral as integral_losses
from jpose.train import checkpointing
from jpose.train import config_check
from jpose.train import integral
from jpose.train import loop


def _final_state(config, workdir):
  exp = loop.build_experiment(config)
  return checkpointing.Checkpointer(workdir, 3).restore(exp.abstract_state)


def test_seed002_tiny_trains_evaluates_and_resumes_exactly(tiny_config, tmp_path):
  """Crossing the heatmap switch (step 3 of 6) inside the resumed half."""
  full = tmp_path / "full"
  results = loop.train_and_evaluate(tiny_config("integral_seed002"), str(full))
  assert results["num_frames"] == 16
  assert np.isfinite(results["protocol1"]["action_wise_mean"])
  assert os.path.isfile(full / "poses.png") and os.path.isfile(full / "eval_results.json")
  split = tmp_path / "split"
  loop.train_and_evaluate(tiny_config("integral_seed002", num_steps=3), str(split),
                          evaluate_at_end=False)
  loop.train_and_evaluate(tiny_config("integral_seed002"), str(split), evaluate_at_end=False)
  (a, data_a), (b, data_b) = (_final_state(tiny_config("integral_seed002"), str(d))
                              for d in (full, split))
  assert int(a.step) == int(b.step) == 6 and data_a == data_b
  chex.assert_trees_all_equal(a.params, b.params)
  chex.assert_trees_all_equal(a.batch_stats, b.batch_stats)


def test_heatmap_term_joins_the_loss_at_its_start_step(tiny_config):
  config = tiny_config("integral_seed002")
  assert config.integral.heatmap_start_step == 3
  trainer = integral.IntegralTrainer(config, pipeline.NormStats(*[np.zeros(1)] * 4), 100)
  rng = np.random.default_rng(0)
  grid = (config.model.depth_bins, 16, 16)
  logits = jnp.asarray(rng.normal(0, 1, (2, 17) + grid), jnp.float32)
  images = {"joints_2d": jnp.asarray(rng.uniform(0, 64, (2, 17, 2)), jnp.float32),
            "pose_3d": jnp.asarray(rng.normal(0, 300, (2, 17, 3)), jnp.float32),
            "visible": jnp.ones((2, 17)), "has_3d": jnp.asarray([1.0, 0.0])}
  before, after = (trainer.losses(logits, images, jnp.int32(s)) for s in (2, 3))
  assert float(before["heatmap_bce"]) == 0.0
  assert float(before["loss"]) == pytest.approx(float(before["integral_l1"]))
  target = integral.voxel_targets(images, grid, config.data.crop_size,
                                  config.model.depth_range_mm)
  # Only the example with 3D has a cube: the mask is visible * has_3d.
  expected = integral_losses.gaussian_cube_bce(logits[:1], target[:1], jnp.ones((1, 17)))
  assert float(after["heatmap_bce"]) == pytest.approx(float(expected), rel=1e-6)
  assert float(after["loss"]) == pytest.approx(
      float(after["integral_l1"]) + config.integral.heatmap_weight * float(expected), rel=1e-6)


def test_recorded_images_train_x_y_of_2d_only_people(tiny_config, image_records_dir):
  """LSP people (no 3D): records feed the same step; depth is masked, x and y train."""
  config = tiny_config("integral_r50", num_steps=2, checkpoint_every=2, log_every=2)
  config.data.images = "lsp:train:1,mpii:train:1"
  config.data.data_dir = image_records_dir
  config.data.crop_size = 256  # the records' crop size
  trainer = integral.IntegralTrainer(config, pipeline.NormStats(*[np.zeros(1)] * 4), 100)
  assert trainer.batch_keys == integral.IMAGE_KEYS
  dataset = trainer.train_dataset(None, None, 4, seed=0)
  batch = dataset[0]
  assert batch["image"].shape == (4, 256, 256, 3) and batch["image"].dtype == np.uint8
  assert not batch["has_3d"].any()
  state = jax.jit(trainer.init)(jax.random.key(0))
  step = jax.jit(trainer.train_step)
  state, metrics = step(state, {k: jnp.asarray(batch[k]) for k in trainer.batch_keys}, ())
  assert np.isfinite(float(metrics["loss"])) and float(metrics["loss"]) > 0
  assert float(metrics["train_depth_error_mm"]) == 0.0  # no 3D in the batch: nothing counted


@pytest.mark.parametrize("section,field,value,error,match", [
    ("data", "augment", "imgaug", ValueError, "data.augment"),
    ("data", "images", "mpii:train:half", ValueError, "weight 'half'"),
    ("data", "crop_size", 100, ValueError, "crop_size"),
    ("data", "input_2d", "sh", ValueError, "input_2d='sh'"),
    ("model", "pretrained", "/nonexistent/resnet50.pth", FileNotFoundError,
     "/nonexistent/resnet50.pth")])
def test_bad_image_fields_are_named(tiny_config, section, field, value, error, match):
  config = tiny_config("integral_r50")
  config[section][field] = value
  with pytest.raises(error, match=match):
    config_check.validate(config)


@pytest.mark.parametrize("name", ["integral_r50", "integral_depth72", "hmr_hybrid"])
def test_imagenet_configs_stop_without_their_weights(name, tfds_dir):
  """A config whose published setting is ImageNet weights does not silently train from
  scratch: an unset model.pretrained is a named error, before data or model; "none" is
  scratch on purpose (and loads nothing)."""
  config = configs.load(name)
  config.data.data_dir = tfds_dir
  with pytest.raises(ValueError, match=r"config\.model\.pretrained: unset.*=none"):
    config_check.validate(config)
  if name.startswith("integral"):
    with pytest.raises(ValueError, match=r"config\.model\.pretrained: unset"):
      jax.eval_shape(integral.IntegralTrainer(
          config, pipeline.NormStats(*[np.zeros(1)] * 4), 100).init, jax.random.key(0))
  config.model.pretrained = "none"
  config_check.validate(config)
  # The runnable variants a person tries first stay runnable.
  for variant in ("integral_r50:tiny", "integral_seed002", "integral_r18_cpu", "hmr_hybrid:cpu"):
    config_check.validate(configs.load(variant))


def test_integral_r50_augments_as_sun_et_al():
  assert configs.load("integral_r50").data.augment == "sun_2018"
  assert integral.AUGMENT_PRESETS["sun_2018"] is augment.SUN_2018


@pytest.mark.parametrize("name,params", [
    ("integral_r50", 34_274_944), ("integral_depth72", 34_309_896),
    ("integral_r18_cpu", 12_820_320)])
def test_parameter_counts(name, params):
  config = configs.load(name)
  config.model.pretrained = "none"  # random init on purpose: shapes only.
  trainer = integral.IntegralTrainer(config, pipeline.NormStats(*[np.zeros(1)] * 4), 100)
  shapes = jax.eval_shape(trainer.init, jax.random.key(0))
  assert sum(x.size for x in jax.tree.leaves(shapes.params)) == params


def test_recorded_test_crops_evaluate_by_subject_and_action(tiny_config, monkeypatch, tmp_path):
  """eval.images: the final evaluation reads recorded crops (h36m_images' layout) instead
  of rendering, and names that split in its results."""
  from jpose.data import image_pipeline  # pylint: disable=g-import-not-at-top
  from tests.evaluate.test_evaluator import fake_h36m_image_records  # pylint: disable=g-import-not-at-top
  records = fake_h36m_image_records(size=64)
  monkeypatch.setattr(image_pipeline, "open_serialized", lambda *a, **k: records)
  config = tiny_config("integral_r50", num_steps=2, checkpoint_every=2, log_every=2)
  config.eval.images = "h36m_images:test"
  config.eval.final_frame_stride = 1
  results = loop.train_and_evaluate(config, str(tmp_path))
  assert (results["dataset"], results["split"], results["num_frames"]) == ("h36m_images", "test", 5)
  assert set(results["protocol1"]["per_action"]) == {"Walking", "Eating"}
  assert set(results["protocol1"]["per_subject"]) == {"S9", "S11"}
  assert np.isfinite(results["protocol1"]["action_wise_mean"])
  assert os.path.isfile(tmp_path / "poses.png")


def test_pretrained_backbone_enters_the_initial_state(tiny_config, tmp_path):
  """config.model.pretrained: the compiled init holds the file's ImageNet weights."""
  from tests.formats import torch_files  # pylint: disable=g-import-not-at-top
  state_dict = torch_files.random_state_dict(torch_files.torchvision_resnet_shapes(18))
  path = str(tmp_path / "resnet18.pth")
  torch_files.write_torch_zip(path, state_dict)
  config = tiny_config("integral_r50")
  config.model.pretrained = path
  exp = loop.build_experiment(config, need_train=False)
  state = exp.init_state()
  backbone = state.params["net"]["backbone"]
  np.testing.assert_array_equal(np.asarray(backbone["layer4_1"]["conv2"]["kernel"]),
                                state_dict["layer4.1.conv2.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(np.asarray(state.batch_stats["net"]["backbone"]["bn1"]["mean"]),
                                state_dict["bn1.running_mean"])


def _centroid_model(size: int):
  """A hand-built crop predictor that commutes with mirroring: every joint is the
  intensity centroid of the image's red channel plus a fixed offset, the offsets of each
  left/right pair mirror images of each other (x negated), centre joints on the axis.
  So predicting the mirrored crop, mirroring x back (S - x) and swapping sides gives the
  plain prediction exactly; S - 1 - x, or no swap, does not."""
  rng = np.random.default_rng(26)
  offsets = rng.uniform(-10, 10, (17, 3))
  for left, right in skeleton.H36M_17.flip_pairs:  # mirror images: x negated, y and z shared
    offsets[right] = offsets[left] * np.array([-1.0, 1.0, 1.0])
  perm = np.asarray(skeleton.H36M_17.flip_permutation)
  offsets[perm == np.arange(17), 0] = 0.0  # centre joints on the axis
  offsets = jnp.asarray(offsets, jnp.float32)

  def crop_joints(state, images):
    del state
    red = images[..., 0]
    grid = jnp.arange(size, dtype=jnp.float32) + 0.5  # pixel centres
    total = jnp.sum(red, axis=(1, 2))
    x = jnp.sum(red * grid[None, None, :], axis=(1, 2)) / total
    y = jnp.sum(red * grid[None, :, None], axis=(1, 2)) / total
    return jnp.stack([x, y, jnp.zeros_like(x)], -1)[:, None, :] + offsets
  return crop_joints


def test_flip_test_of_a_mirror_symmetric_model_changes_nothing(tiny_config, monkeypatch):
  config = tiny_config("integral_r50")
  trainer = integral.IntegralTrainer(config, pipeline.NormStats(*[np.zeros(1)] * 4), 100)
  size = config.data.crop_size
  monkeypatch.setattr(trainer, "_crop_joints", _centroid_model(size))
  # Noise brightening to the right: the centroid sits right of the centre.
  noise = np.random.default_rng(0).integers(0, 64, (3, size, size, 3))
  ramp = np.linspace(0, 191, size)[None, None, :, None]
  images = jnp.asarray(noise + ramp, jnp.uint8)
  plain = np.asarray(trainer.predict_crops(None, images))
  flipped = np.asarray(trainer.predict_crops(None, images, flip_test=True))
  # float32 centroids of 64 px rows: measured 4e-6 px apart.
  np.testing.assert_allclose(flipped, plain, atol=1e-4)
  # The hand-built model sees the image: its mirror moves the joints by pixels.
  mirrored = np.asarray(trainer._crop_joints(None, images[:, :, ::-1].astype(jnp.float32)))
  assert np.abs(mirrored - plain).max() > 1.0


def _lively_state(trainer):
  """The tiny net's initial state with its head's kernels x 300: the N(0, 0.001^2) initial
  head predicts the crop centre for any image (as tests/test_predict_records.py notes)."""
  state = trainer.init(jax.random.key(0))
  return state.replace(params=jax.tree_util.tree_map_with_path(
      lambda path, x: x * 300.0 if "'head'" in jax.tree_util.keystr(path)
      and "kernel" in jax.tree_util.keystr(path) else x, state.params))


def test_flip_test_reaches_the_recorded_crop_evaluation(tiny_config):
  """eval.flip_test on recorded crops: predict_records (the evaluator's path) averages
  the plain crop prediction with the mirrored crop's, mirrored back and swapped."""
  from tests.evaluate.test_evaluator import fake_h36m_image_records  # pylint: disable=g-import-not-at-top
  from jpose.data import image_pipeline  # pylint: disable=g-import-not-at-top
  from jpose.evaluate import evaluator  # pylint: disable=g-import-not-at-top
  from jpose.geometry import heatmap  # pylint: disable=g-import-not-at-top
  config = tiny_config("integral_r50")
  config.eval.flip_test = True
  trainer = integral.IntegralTrainer(config, pipeline.NormStats(*[np.zeros(1)] * 4), 100)
  state = _lively_state(trainer)
  batch = evaluator.image_eval_dataset(image_pipeline.Source("h36m_images", "test"), 5, 64,
                                       fake_h36m_image_records(size=64),
                                       shard_index=0, shard_count=1)[0]
  inputs = {k: jnp.asarray(batch[k]) for k in trainer.record_keys}
  averaged = np.asarray(jax.jit(trainer.predict_records)(state, inputs))
  images = inputs["image"].astype(jnp.float32) / 255.0
  plain = trainer._crop_joints(state, images)
  mirrored = heatmap.mirror_crop_joints(trainer._crop_joints(state, images[:, :, ::-1]), 64)
  expected = np.asarray(trainer.crop_to_camera((plain + mirrored) / 2, inputs))
  # jit against op-by-op XLA on the x300 head: measured 0.012 mm apart at most.
  np.testing.assert_allclose(averaged, expected, atol=0.05)  # mm
  unflipped = np.asarray(trainer.crop_to_camera(plain, inputs))
  assert np.abs(averaged - unflipped).max() > 10.0  # the option is not ignored (mm)


def test_recorded_crop_figure_draws_the_metrics_prediction(tiny_config, monkeypatch):
  """poses.png on recorded crops: its 2D joints are those the 3D metrics come from (the
  uint8 crops made [0, 1] first), not a prediction on raw 0-255 pixels."""
  from tests.evaluate.test_evaluator import fake_h36m_image_records  # pylint: disable=g-import-not-at-top
  from jpose.data import image_pipeline  # pylint: disable=g-import-not-at-top
  from jpose.evaluate import evaluator  # pylint: disable=g-import-not-at-top
  from jpose import sharding  # pylint: disable=g-import-not-at-top
  records = fake_h36m_image_records(size=64)
  monkeypatch.setattr(image_pipeline, "open_serialized", lambda *a, **k: records)
  config = tiny_config("integral_r50")
  config.eval.images = "h36m_images:test"  # recorded crops: the "images" evaluator.
  trainer = integral.IntegralTrainer(config, pipeline.NormStats(*[np.zeros(1)] * 4), 100)
  state = _lively_state(trainer)
  source = image_pipeline.Source("h36m_images", "test")
  evaluation = loop.EVALUATORS[trainer.evaluator_name](trainer, None, sharding.make_mesh())
  assert isinstance(evaluation, evaluator.ImageEvaluator)
  sample = evaluation.examples(state, num_examples=5)
  images = jnp.asarray(sample["image"], jnp.float32)  # [0, 1], as drawn
  joints = np.asarray(trainer._crop_joints(state, images))
  np.testing.assert_allclose(sample["image_joints"], joints[..., :2], atol=1e-3)
  raw = np.asarray(trainer._crop_joints(state, images * 255.0))
  assert np.abs(raw[..., :2] - joints[..., :2]).max() > 0.5  # the old bug is visible (px)
  batch = evaluator.image_eval_dataset(source, 5, 64, records, shard_index=0,
                                       shard_count=1)[0]
  inputs = {k: jnp.asarray(batch[k]) for k in trainer.record_keys}
  np.testing.assert_allclose(sample["predicted"], trainer.predict_records(state, inputs),
                             atol=0.05)  # mm, as above
