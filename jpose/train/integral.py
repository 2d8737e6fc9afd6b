"""The integral pose regression trainer (Sun et al. 2018; seed 002; stage 1 of seed 003).

Images come from one of two places (`config.data.images`):
- "" (the default): people rendered on the device at the training split's real poses and
  cameras (`jpose.data.rendered`). The split stays in device memory like the lifters';
  the host sends only frame ids, and each step draws fresh looks.
- image records ("h36m_images:train:1,mpii:train:1"): JPEG crops read and decoded by the
  host (`jpose.data.image_pipeline`), mixed at their weights.

Either way the step augments on the device (`jpose.data.augment`), runs the
`IntegralPoseNet`, takes the soft-argmax of every joint's volume and trains the integral
L1 loss, plus seed 002's Gaussian-cube heatmap loss from `integral.heatmap_start_step`.

Evaluation renders the test split's frames (a fixed look per sequence) and maps the
predicted (x, y) crop pixels and root-relative depth back to root-relative camera
coordinates in mm with the ground-truth root depth, as Sun et al. and Kato et al. evaluate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jpose.data import augment as augment_lib
from jpose.data import image_pipeline
from jpose.data import pipeline
from jpose.data import rendered
from jpose.data import resident as resident_lib
from jpose.geometry import heatmap
from jpose.geometry import skeleton
from jpose.losses import integral as integral_losses
from jpose.formats import pretrained
from jpose.models import registry
from jpose.train import optimizers
from jpose.train import state as state_lib

Batch = dict[str, jax.Array]

AUGMENT_PRESETS = {"seed_002": augment_lib.SEED_002,
                   "sun_2018": augment_lib.SUN_2018,
                   "geometric_only": augment_lib.GEOMETRIC_ONLY,
                   "none": augment_lib.NONE}
# The fields of an image batch that augmentation moves and the losses read.
IMAGE_KEYS = ("image", "joints_2d", "visible", "pose_3d", "has_3d")
# The test split's looks: fixed, so every evaluation scores the same images.
EVAL_LOOKS_SEED = 20181


def parse_sources(spec: str) -> list[image_pipeline.Source]:
  """"name[:split[:weight]],..." (config.data.images) -> image pipeline sources."""
  sources = []
  for item in filter(None, (part.strip() for part in spec.split(","))):
    fields = item.split(":")
    if len(fields) > 3 or not fields[0]:
      raise ValueError(f"config.data.images: '{item}' is not name[:split[:weight]]")
    try:
      weight = float(fields[2]) if len(fields) > 2 else 1.0
    except ValueError:
      raise ValueError(f"config.data.images: weight '{fields[2]}' of '{item}' is not a "
                       "number") from None
    sources.append(image_pipeline.Source(fields[0], fields[1] if len(fields) > 1 else "train",
                                         weight))
  return sources


def voxel_targets(images: Batch, grid_shape, crop_size: int, depth_range_mm: float):
  """(B, 17, 3) targets in voxel units: crop-pixel x, y and root-relative camera depth."""
  joints = jnp.concatenate([images["joints_2d"], images["pose_3d"][..., 2:3]], axis=-1)
  return heatmap.crop_to_voxel(joints, grid_shape, crop_size, depth_range_mm)


class IntegralTrainer:
  """Integral L1 (+ Gaussian-cube heatmap BCE) on rendered or recorded person crops."""

  # eval.flip_test mirrors the crops in image space (`predict_crops`), so the evaluator
  # does not mirror the 2D poses that rendered frames are drawn from.
  flips_images = True
  reads_sequences = True  # rendered frames and the test split are Human3.6M sequences.
  # Evaluation inputs: host frames of a SequenceSet (rendered), or recorded crops.
  predict_keys = ("pose_2d", "pose_3d", "camera_f", "camera_c", "root_depth", "seq_index")
  record_keys = ("image", "crop", "root_depth", "camera_f", "camera_c", "pose_3d")

  def __init__(self, config: ml_collections.ConfigDict, norm: pipeline.NormStats,
               num_train_frames: int):
    self.config = config
    self.norm = state_lib.norm_stats_to_device(norm)
    self.size = config.data.crop_size
    self.depth_range = config.model.depth_range_mm
    self.augment_params = AUGMENT_PRESETS[config.data.augment]
    self.sources = parse_sources(config.data.images)
    self.batch_keys = IMAGE_KEYS if self.sources else ("frame_id",)
    eval_sources = parse_sources(config.eval.images)
    if len(eval_sources) > 1:
      raise ValueError(f"config.eval.images: one source, got '{config.eval.images}'")
    # "images": recorded crops (evaluator.ImageEvaluator); "frames": rendered test frames
    # (evaluator.FrameEvaluator). Keys of jpose.train.loop.EVALUATORS.
    self.eval_source = eval_sources[0] if eval_sources else None
    self.evaluator_name = "images" if self.eval_source else "frames"
    self.steps_per_epoch = max(1, num_train_frames // config.train.batch_size)
    self.models = {"net": registry.build(config.model.name, config)}
    self.optimizers = {"net": optimizers.make_optimizer(config, config.train.learning_rate,
                                                        self.steps_per_epoch)}

  # Data.
  def resident_data(self, data: pipeline.SequenceSet):
    return () if self.sources else resident_lib.from_sequences(data)

  def train_dataset(self, data: pipeline.SequenceSet, stats: pipeline.NormStats,
                    local_batch: int, seed: int):
    if not self.sources:  # flips are the augmentation's.
      return pipeline.make_dataset(data, stats, local_batch, seed=seed, indices_only=True)
    # Image datasets are prepared beforehand (`python -m jpose.prepare --dataset NAME
    # --manual_dir ...`): data.manual_dir holds data.name's source files, not theirs.
    return image_pipeline.make_dataset(self.sources, local_batch, seed=seed,
                                       crop_size=self.size,
                                       data_dir=self.config.data.data_dir or None)

  def batch_shapes(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    if not self.sources:
      return {"frame_id": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}
    shapes = {"image": ((self.size, self.size, 3), jnp.uint8), "joints_2d": ((17, 2), None),
              "visible": ((17,), None), "pose_3d": ((17, 3), None), "has_3d": ((), None)}
    return {k: jax.ShapeDtypeStruct((batch_size,) + s, d or jnp.float32)
            for k, (s, d) in shapes.items()}

  def train_images(self, state, resident, batch: Batch) -> Batch:
    """The step's augmented image batch: rendered (fresh looks every step) or recorded."""
    if self.sources:
      images = {k: batch[k] for k in IMAGE_KEYS}
    else:
      out = rendered.render_batch(resident, batch["frame_id"], state_lib.stream(state, "render"),
                                  size=self.size)
      images = {k: out[k] for k in IMAGE_KEYS}
    return augment_lib.augment(images, state_lib.stream(state, "augment"), self.augment_params)

  # Model.
  def init(self, rng: jax.Array) -> state_lib.TrainState:
    model = self.models["net"]
    variables = model.init(rng, jnp.zeros((1, self.size, self.size, 3), jnp.float32),
                           train=False)
    weights = pretrained.weights_path(self.config.model)
    if weights:
      # Read at trace time: the ImageNet weights enter the compiled init as constants.
      variables = pretrained.load_resnet(weights, variables, scope=("backbone",))
    params = {"net": variables["params"]}
    return state_lib.TrainState(
        step=jnp.zeros((), jnp.int32), params=params,
        batch_stats={"net": variables["batch_stats"]},
        opt_state={"net": self.optimizers["net"].init(params["net"])},
        rng=jax.random.key_data(jax.random.fold_in(rng, 1000)), norm=self.norm)

  def _logits(self, state, params, images, train: bool):
    variables = {"params": params, "batch_stats": state.batch_stats["net"]}
    if not train:
      return self.models["net"].apply(variables, images, train=False), None
    logits, updates = self.models["net"].apply(variables, images, train=True,
                                               mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  def losses(self, logits, images: Batch, step) -> dict[str, jax.Array]:
    """The weighted total and its terms for (B, J, d, h, w) logits of an image batch."""
    c = self.config.integral
    grid = logits.shape[-3:]
    target = voxel_targets(images, grid, self.size, self.depth_range)
    predicted = heatmap.soft_argmax_volumes(logits)
    l1 = integral_losses.integral_l1(predicted, target, images["visible"], images["has_3d"],
                                     grid)
    # The prediction in crop pixels and root-relative mm, for the train metrics.
    out = {"integral_l1": l1,
           "predicted_crop": heatmap.voxel_to_crop(predicted, grid, self.size, self.depth_range)}
    total = c.l1_weight * l1
    if c.heatmap_weight:  # a zero weight leaves the heatmap loss out of the compiled step.
      mask = images["visible"] * images["has_3d"][:, None]
      bce = jax.lax.cond(
          step >= c.heatmap_start_step,
          lambda: integral_losses.gaussian_cube_bce(logits, target, mask, c.heatmap_cube),
          lambda: jnp.zeros((), jnp.float32))
      total = total + c.heatmap_weight * bce
      out["heatmap_bce"] = bce
    out["loss"] = total
    return out

  def train_step(self, state: state_lib.TrainState, batch: Batch, resident):
    images = self.train_images(state, resident, batch)

    def loss_fn(params):
      logits, stats = self._logits(state, params, images["image"], train=True)
      terms = self.losses(logits, images, state.step)
      return terms["loss"], (terms, stats)

    (_, (terms, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params["net"])
    updates, opt_state = self.optimizers["net"].update(grads, state.opt_state["net"],
                                                       state.params["net"])
    state = state.replace(step=state.step + 1,
                          params={"net": optax.apply_updates(state.params["net"], updates)},
                          batch_stats={"net": stats}, opt_state={"net": opt_state})
    crop = terms.pop("predicted_crop")
    visible, has_3d = images["visible"], images["has_3d"][:, None]
    pixel_error = jnp.linalg.norm(crop[..., :2] - images["joints_2d"], axis=-1)
    depth_error = jnp.abs(crop[..., 2] - images["pose_3d"][..., 2])
    metrics = dict(terms)
    metrics["train_joint_error_px"] = (jnp.sum(pixel_error * visible)
                                       / jnp.maximum(jnp.sum(visible), 1.0))
    metrics["train_depth_error_mm"] = (jnp.sum(depth_error * has_3d)
                                       / jnp.maximum(jnp.sum(has_3d) * 17, 1.0))
    return state, metrics

  # Evaluation.
  def render_eval(self, batch: Batch) -> Batch:
    """The test frames of a host batch (`predict_keys`), rendered with fixed looks."""
    return rendered.render_frames(batch, batch["seq_index"], jax.random.key(EVAL_LOOKS_SEED),
                                  self.size)

  def predict_crops(self, state, images: jax.Array, flip_test: bool = False) -> jax.Array:
    """(B, S, S, 3) uint8 or [0, 1] float images -> (B, 17, 3): x, y crop pixels and
    root-relative depth, mm. flip_test: averaged with the prediction on the mirrored crop,
    mirrored back and with left and right swapped (Sun et al.'s test-time flip)."""
    images = augment_lib.to_float_image(images)
    joints = self._crop_joints(state, images)
    if not flip_test:
      return joints
    mirrored = self._crop_joints(state, images[:, :, ::-1, :])
    return (joints + heatmap.mirror_crop_joints(mirrored, images.shape[2])) / 2

  def _crop_joints(self, state, images: jax.Array) -> jax.Array:
    logits, _ = self._logits(state, state.params["net"], images, train=False)
    coords = heatmap.soft_argmax_volumes(logits)
    return heatmap.voxel_to_crop(coords, logits.shape[-3:], self.size, self.depth_range)

  def predict(self, state, batch: Batch) -> jax.Array:
    """Host test frames -> (B, 17, 3) root-relative camera coordinates in mm."""
    return self.predict_records(state, self.render_eval(batch))

  def predict_records(self, state, batch: Batch) -> jax.Array:
    """Crops (`record_keys`: recorded, or rendered by `render_eval`) -> (B, 17, 3)
    root-relative camera coordinates, mm (flip-averaged with eval.flip_test)."""
    joints = self.predict_crops(state, batch["image"], self.config.eval.flip_test)
    return self.crop_to_camera(joints, batch)

  @staticmethod
  def crop_to_camera(joints: jax.Array, batch: Batch) -> jax.Array:
    """`predict_crops`' joints on the crops of `batch` (`record_keys`) -> (B, 17, 3)
    root-relative camera coordinates, mm, with the batch's true root depth."""
    return heatmap.crop_to_camera(joints, batch["crop"], batch["root_depth"],
                                  batch["camera_f"], batch["camera_c"], skeleton.ROOT)

  def predict_images(self, state, batch: Batch) -> dict[str, jax.Array]:
    """The rendered test images and the predicted 2D joints on them (for poses.png)."""
    images = self.render_eval(batch)
    joints = self.predict_crops(state, images["image"], self.config.eval.flip_test)
    return {"image": images["image"], "joints_2d": joints[..., :2]}

