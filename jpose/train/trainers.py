"""Lifter trainers: the pure init, train-step and predict functions of the Martinez family.

A trainer is plain Python holding the Flax modules and optax transforms; its methods are
pure functions of (state, batch, resident) that the loop compiles once with jax.jit.
`resident` is the training split in device memory (`jpose.data.resident`).
`jpose.train.registry` maps config.train.trainer to a trainer class.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jpose.data import lifter_inputs
from jpose.data import pipeline
from jpose.data import resident as resident_lib
from jpose.metrics import pose as pose_metrics
from jpose.models import registry
from jpose.train import optimizers
from jpose.train import state as state_lib

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]


def normalised_2d(pose_2d: jax.Array, norm: pipeline.NormStats,
                  data: ml_collections.ConfigDict, key: jax.Array | None = None,
                  noise: float = 0.0, joint_dropout: float = 0.0) -> jax.Array:
  """(..., 17, 2) pixels -> the config's joints in its 2D frame (`lifter_inputs.prepare`),
  normalised with the train split's statistics; NaN (an absent joint) -> 0.

  With a key (training), joints are first dropped with probability `joint_dropout`, and
  Gaussian noise of sigma `noise` is added to the normalised values.
  """
  if key is not None and joint_dropout:
    pose_2d = lifter_inputs.drop_joints(pose_2d, key, joint_dropout)
  pose_2d = lifter_inputs.prepare(pose_2d, data.keypoints, data.frame_2d)
  x = jnp.nan_to_num(pipeline.normalise(pose_2d, norm.mean_2d, norm.std_2d))
  return lifter_inputs.add_noise(x, key, noise) if key is not None and noise else x


def lifter_vector(pose_2d_norm: jax.Array, keypoints: str) -> jax.Array:
  """(B, 17, 2) normalised 2D -> (B, 2 * joints): the joints `lifter_inputs.lifter_joints`
  names, flattened."""
  joints = np.asarray(lifter_inputs.lifter_joints(keypoints))
  return pose_2d_norm[:, joints].reshape(pose_2d_norm.shape[0], -1)


def lifter_targets(batch: Batch) -> jax.Array:
  """(B, 17, 3) normalised root-relative 3D -> (B, 48): the root is always the origin."""
  return batch["pose_3d_norm"][:, 1:].reshape(batch["pose_3d_norm"].shape[0], -1)


def lifter_output_to_mm(output: jax.Array, norm: pipeline.NormStats) -> jax.Array:
  """(B, 48) normalised output -> (B, 17, 3) root-relative mm with the root at 0."""
  joints = output.reshape(output.shape[0], 16, 3)
  joints = pipeline.denormalise(joints, norm.mean_3d[1:], norm.std_3d[1:])
  return jnp.concatenate([jnp.zeros_like(joints[:, :1]), joints], axis=1)


class SupervisedLifter:
  """Martinez-style lifting: MSE on normalised 3D (+ DeepBase2's intermediate head).

  Training reads the split from device memory: a batch is frame ids and flip flags
  (`batch_keys`), and the step gathers, flips and normalises the frames itself.
  Evaluation feeds host batches of `predict_keys` (pixels; `predict` normalises them with
  the statistics stored in the train state).
  """

  batch_keys = ("frame_id", "flip")
  predict_keys = ("pose_2d", "pose_3d", "camera_c")
  reads_sequences = True  # the loop loads the Human3.6M sequences of the config.
  evaluator_name = "frames"  # scored frame by frame (jpose.train.loop.EVALUATORS)

  def __init__(self, config: ml_collections.ConfigDict, norm: pipeline.NormStats,
               num_train_frames: int):
    self.config = config
    self.norm = state_lib.norm_stats_to_device(norm)
    self.steps_per_epoch = max(1, num_train_frames // config.train.batch_size)
    self.models = {"lifter": registry.build(config.model.name, config)}
    self.optimizers = {"lifter": optimizers.make_optimizer(config, config.train.learning_rate,
                                                self.steps_per_epoch)}

  def resident_data(self, data: pipeline.SequenceSet) -> resident_lib.ResidentData:
    """The training split's arrays, which the step reads from device memory."""
    return resident_lib.from_sequences(data)

  def train_dataset(self, data: pipeline.SequenceSet, stats: pipeline.NormStats,
                    local_batch: int, seed: int):
    return pipeline.make_dataset(data, stats, local_batch, seed=seed, flip=self.config.data.flip,
                                 indices_only=True)

  def batch_shapes(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    """Shapes of the batch arrays train_step reads (for benchmarks and compilation)."""
    return {"frame_id": jax.ShapeDtypeStruct((batch_size,), jnp.int32),
            "flip": jax.ShapeDtypeStruct((batch_size,), jnp.bool_)}

  def frames(self, state, resident, batch: Batch) -> Batch:
    """The batch's frames gathered from device memory, flipped, plus normalised poses
    (the keys of the host pipeline's batches)."""
    frames = resident_lib.gather_frames(resident, batch["frame_id"], batch["flip"])
    norm = state.norm
    m = self.config.model
    frames["pose_2d_norm"] = normalised_2d(frames["pose_2d"], norm, self.config.data,
                                           state_lib.stream(state, "input_noise"), m.noise_2d,
                                           m.joint_dropout)
    frames["pose_3d_norm"] = pipeline.normalise(frames["pose_3d"], norm.mean_3d, norm.std_3d)
    return frames

  def _sample_input(self, name: str) -> jax.Array:
    return jnp.zeros((2, 2 * len(lifter_inputs.lifter_joints(self.config.data.keypoints))),
                     jnp.float32)

  def init(self, rng: jax.Array) -> state_lib.TrainState:
    params, batch_stats, opt_state = {}, {}, {}
    for i, (name, model) in enumerate(self.models.items()):
      variables = model.init(jax.random.fold_in(rng, i), self._sample_input(name), train=False)
      params[name] = variables["params"]
      batch_stats[name] = variables.get("batch_stats", {})
      opt_state[name] = self.optimizers[name].init(params[name])
    return state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                batch_stats=batch_stats, opt_state=opt_state,
                                rng=jax.random.key_data(jax.random.fold_in(rng, 1000)),
                                norm=self.norm)

  def _apply(self, state, name, params, x, train: bool, rng=None):
    variables = {"params": params}
    if state.batch_stats[name]:
      variables["batch_stats"] = state.batch_stats[name]
    if not train:
      return self.models[name].apply(variables, x, train=False), state.batch_stats[name]
    if not state.batch_stats[name]:
      return self.models[name].apply(variables, x, train=True, rngs={"dropout": rng}), {}
    outputs, updates = self.models[name].apply(variables, x, train=True, rngs={"dropout": rng},
                                               mutable=["batch_stats"])
    return outputs, updates["batch_stats"]

  def _supervised_loss(self, outputs, targets):
    loss = jnp.mean((outputs["output"] - targets) ** 2)
    if "intermediate" in outputs:
      loss = loss + self.config.train.intermediate_loss_weight * jnp.mean(
          (outputs["intermediate"] - targets) ** 2)
    return loss

  def _update(self, state, name, grads, params):
    updates, opt_state = self.optimizers[name].update(grads, state.opt_state[name], params)
    return optax.apply_updates(params, updates), opt_state

  def train_step(self, state: state_lib.TrainState, batch: Batch, resident
                 ) -> tuple[state_lib.TrainState, Metrics]:
    batch = self.frames(state, resident, batch)
    x, y = lifter_vector(batch["pose_2d_norm"], self.config.data.keypoints), lifter_targets(batch)

    def loss_fn(params):
      outputs, stats = self._apply(state, "lifter", params, x, True,
                                   state_lib.stream(state, "dropout"))
      return self._supervised_loss(outputs, y), (outputs, stats)

    (loss, (outputs, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params["lifter"])
    params, opt_state = self._update(state, "lifter", grads, state.params["lifter"])
    state = state.replace(step=state.step + 1, params={**state.params, "lifter": params},
                          batch_stats={**state.batch_stats, "lifter": stats},
                          opt_state={**state.opt_state, "lifter": opt_state})
    mm = lifter_output_to_mm(outputs["output"], state.norm)
    return state, {"loss": loss,
                   "train_mpjpe": jnp.mean(pose_metrics.mpjpe(mm, batch["pose_3d"]))}

  def predict(self, state: state_lib.TrainState, batch: Batch) -> jax.Array:
    """(B, 17, 2) pixels -> (B, 17, 3) root-relative predictions in mm, eval mode."""
    x = lifter_vector(normalised_2d(batch["pose_2d"], state.norm, self.config.data),
                      self.config.data.keypoints)
    outputs, _ = self._apply(state, "lifter", state.params["lifter"], x, False)
    return lifter_output_to_mm(outputs["output"], state.norm)


def _bce_with_logits(logits, label: float):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


class GanLifter(SupervisedLifter):
  """The lifter as generator; a pose critic judges 3D poses. Each step first updates the
  critic on (real, generated) poses, then the generator on supervised + adversarial loss.
  """

  def __init__(self, config: ml_collections.ConfigDict, norm: pipeline.NormStats,
               num_train_frames: int):
    super().__init__(config, norm, num_train_frames)
    self.models["critic"] = registry.build("pose_critic", config)
    self.optimizers["critic"] = optimizers.make_optimizer(config, config.gan.critic_learning_rate,
                                               self.steps_per_epoch)

  def _sample_input(self, name: str) -> jax.Array:
    if name == "critic":
      return jnp.zeros((2, registry.NUM_LIFTER_OUTPUTS), jnp.float32)
    return super()._sample_input(name)

  def train_step(self, state, batch, resident):
    batch = self.frames(state, resident, batch)
    x = lifter_vector(batch["pose_2d_norm"], self.config.data.keypoints)
    real = lifter_targets(batch)
    # One generator forward serves both updates: the critic judges its (stopped) output,
    # and the generator's gradient is pulled back through it with jax.vjp.
    outputs, pullback, stats = jax.vjp(
        lambda params: self._apply(state, "lifter", params, x, True,
                                   state_lib.stream(state, "dropout")),
        state.params["lifter"], has_aux=True)
    fake = jax.lax.stop_gradient(outputs["output"])

    def critic_loss_fn(params):
      rng = state_lib.stream(state, "critic_dropout")
      real_logits, _ = self._apply(state, "critic", params, real, True, rng)
      fake_logits, _ = self._apply(state, "critic", params, fake, True,
                                   jax.random.fold_in(rng, 1))
      return (_bce_with_logits(real_logits["output"], 1.0)
              + _bce_with_logits(fake_logits["output"], 0.0))

    critic_loss, critic_grads = jax.value_and_grad(critic_loss_fn)(state.params["critic"])
    critic_params, critic_opt = self._update(state, "critic", critic_grads,
                                             state.params["critic"])

    def generator_loss_fn(generated):
      logits, _ = self._apply(state, "critic", critic_params, generated["output"], True,
                              state_lib.stream(state, "critic_dropout_g"))
      supervised = self._supervised_loss(generated, real)
      adversarial = _bce_with_logits(logits["output"], 1.0)
      total = supervised + self.config.gan.adversarial_weight * adversarial
      return total, (supervised, adversarial)

    (loss, (supervised, adversarial)), output_grads = jax.value_and_grad(
        generator_loss_fn, has_aux=True)(outputs)
    grads, = pullback(output_grads)
    params, opt_state = self._update(state, "lifter", grads, state.params["lifter"])
    state = state.replace(
        step=state.step + 1,
        params={"lifter": params, "critic": critic_params},
        batch_stats={**state.batch_stats, "lifter": stats},
        opt_state={"lifter": opt_state, "critic": critic_opt})
    mm = lifter_output_to_mm(outputs["output"], state.norm)
    return state, {"loss": loss, "supervised_loss": supervised,
                   "adversarial_loss": adversarial, "critic_loss": critic_loss,
                   "train_mpjpe": jnp.mean(pose_metrics.mpjpe(mm, batch["pose_3d"]))}
