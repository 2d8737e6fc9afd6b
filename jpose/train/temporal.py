"""The temporal trainer: VideoPose3D-style training of the dilated TCN.

Training reads device-resident sequences (`jpose.data.resident`): the host sends frame
ids and flip flags, the step gathers one receptive field per id, adds Gaussian input
noise, and trains the strided form on the centre frame with an MPJPE loss. Evaluation
slides the dilated form over whole test sequences (see `evaluator.SequenceEvaluator`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from jpose.data import pipeline
from jpose.data import resident as resident_lib
from jpose.data import windows
from jpose.geometry import skeleton
from jpose.metrics import pose as pose_metrics
from jpose.train import state as state_lib
from jpose.train import trainers

MM_PER_M = 1000.0


class TemporalTrainer(trainers.SupervisedLifter):
  """Inputs: 2D (J x 2) or 2D + depth (J x 3); output: 17 root-relative joints in metres."""

  evaluator_name = "sequences"  # jpose.train.loop.EVALUATORS

  def __init__(self, config: ml_collections.ConfigDict, norm: pipeline.NormStats,
               num_train_frames: int):
    super().__init__(config, norm, num_train_frames)
    self.model = self.models["lifter"]
    self.field = self.model.receptive_field
    self.offsets = windows.window_offsets(self.field, config.model.causal)
    self.features = 3 if config.model.input_depth else 2

  def _sample_input(self, name: str) -> jax.Array:
    return jnp.zeros((2, self.field, 17, self.features), jnp.float32)

  def model_inputs(self, pose_2d, pose_3d, norm, noise_key=None, noise_2d=0.0,
                   noise_depth=0.0, joint_dropout=0.0):
    """(..., 17, 2) pixels and (..., 17, 3) root-relative mm -> normalised (..., 17, F).

    Depth is the joint's root-relative camera depth over model.depth_range_mm. Gaussian
    noise (sigmas in normalised units) is added where a key is given.
    """
    x = trainers.normalised_2d(pose_2d, norm, self.config.data, noise_key, noise_2d,
                               joint_dropout)
    if self.features == 2:
      return x
    depth = pose_3d[..., 2:3] / self.config.model.depth_range_mm
    if noise_key is not None and noise_depth:
      depth = depth + noise_depth * jax.random.normal(jax.random.fold_in(noise_key, 1),
                                                      depth.shape)
    return jnp.concatenate([x, depth], axis=-1)

  def bn_momentum(self, step):
    """Exponential decay from bn_momentum_start to bn_momentum_end over training."""
    t = self.config.train
    progress = jnp.minimum(step / max(1, t.num_steps), 1.0)
    return t.bn_momentum_start * (t.bn_momentum_end / t.bn_momentum_start) ** progress

  def train_step(self, state, batch, resident):
    ids, flip = batch["frame_id"], batch["flip"]
    windows_2d, windows_3d, windows_depth = resident_lib.gather_windows(resident, ids,
                                                                        self.offsets)
    principal_x = resident.camera_c[ids, 0]
    windows_2d = skeleton.mirror(windows_2d, principal_x, flip)
    # The depth input is the ground truth's, or a first stage's prediction of it.
    windows_in = skeleton.mirror(windows_3d.at[..., 2].set(windows_depth), where=flip)
    windows_3d = skeleton.mirror(windows_3d, where=flip)
    target = windows_3d[:, -1 if self.config.model.causal else self.field // 2]
    m = self.config.model
    inputs = self.model_inputs(windows_2d, windows_in, state.norm, state_lib.stream(state, "noise"),
                               m.noise_2d, m.noise_depth, m.joint_dropout)
    momentum = self.bn_momentum(state.step)

    def loss_fn(params):
      predicted, updates = self.model.apply(
          {"params": params, "batch_stats": state.batch_stats["lifter"]}, inputs, train=True,
          strided=True, momentum=momentum, rngs={"dropout": state_lib.stream(state, "dropout")},
          mutable=["batch_stats"])
      predicted = predicted[:, 0]
      loss = jnp.mean(pose_metrics.mpjpe(predicted, target / MM_PER_M))
      return loss, (predicted, updates["batch_stats"])

    (loss, (predicted, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params["lifter"])
    params, opt_state = self._update(state, "lifter", grads, state.params["lifter"])
    state = state.replace(step=state.step + 1, params={"lifter": params},
                          batch_stats={"lifter": stats}, opt_state={"lifter": opt_state})
    return state, {"loss": loss, "train_mpjpe": loss * MM_PER_M, "bn_momentum": momentum}

  def predict_sequences(self, state, pose_2d, pose_3d, principal_x, noise_key=None):
    """Dilated form over padded chunks: (B, L + RF - 1, 17, 2|3) -> (B, L, 17, 3) mm.

    With eval.flip_test the mirrored input is predicted too, mirrored back, and averaged.
    The predicted root is left where the model puts it, as VideoPose3D evaluates: only
    the target's root is the origin, so a root offset counts as error.
    """
    def run(p2, p3):
      inputs = self.model_inputs(p2, p3, state.norm, noise_key, 0.0,
                                 self.config.eval.depth_noise)
      out = self.model.apply({"params": state.params["lifter"],
                              "batch_stats": state.batch_stats["lifter"]}, inputs, train=False,
                             strided=False)
      return out * MM_PER_M

    if self.config.eval.flip_test:
      return resident_lib.flip_average(run, pose_2d, pose_3d, principal_x)
    return run(pose_2d, pose_3d)

