"""The VAE lifter's trainer: supervised (3D loss + KL) or unsupervised (2D only).

Unsupervised, following Drover et al. 2018 and Chen et al. 2019: lift a unit-scale 2D
pose to 3D, rotate the 3D pose by a random angle about the vertical axis (the world's, from
the camera calibration, by default: see config vae.rotation_axis), reproject it,
and let a 2D discriminator judge it against real 2D poses; the unrotated projection must
reproduce the input, and the KL term is weighted by a cyclic beta schedule. Each step
first updates the discriminator, then the encoder and decoder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jpose.data import pipeline
from jpose.geometry import skeleton
from jpose.geometry import weak_perspective as wp
from jpose.models import registry
from jpose.train import optimizers
from jpose.train import state as state_lib
from jpose.train import trainers


def beta_schedule(epoch, config: ml_collections.ConfigDict):
  """KL weight at a (fractional) epoch: 0 for the warm-up, then cycles that ramp
  linearly from 0 to lambda_kld and hold it for the cycle's last beta_hold_epochs."""
  v = config.vae
  ramp = v.beta_cycle_epochs - v.beta_hold_epochs
  t = jnp.mod(jnp.maximum(epoch - v.beta_warmup_epochs, 0.0), v.beta_cycle_epochs)
  beta = v.lambda_kld * jnp.minimum(1.0, t / ramp)
  return jnp.where(epoch < v.beta_warmup_epochs, 0.0, beta)


def kl_divergence(mu, log_var):
  """KL(N(mu, sigma^2) || N(0, 1)) per example, summed over the latent."""
  return -0.5 * jnp.sum(1.0 + log_var - mu**2 - jnp.exp(log_var), axis=-1)


def bone_symmetry(pose):
  """Mean squared difference between the lengths of each left bone and its right twin,
  for (B, 16, 3) root-relative poses (the root is the origin)."""
  joints = jnp.concatenate([jnp.zeros_like(pose[:, :1]), pose], axis=1)
  return jnp.mean((skeleton.bone_lengths(joints, epsilon=1e-8)
                   - skeleton.bone_lengths(skeleton.flip_left_right(joints), epsilon=1e-8))**2)


def _bce(logits, label: float):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, label)))


def _clipped_adam(config, clip_norm: float, steps_per_epoch: int):
  return optax.chain(optax.clip(config.vae.gradient_value_clip),
                     optax.clip_by_global_norm(clip_norm),
                     optimizers.make_optimizer(config, config.train.learning_rate, steps_per_epoch))


class VaeTrainer(trainers.SupervisedLifter):
  predict_keys = ("pose_2d", "pose_3d", "camera_f", "camera_c", "root_depth")

  def __init__(self, config: ml_collections.ConfigDict, norm: pipeline.NormStats,
               num_train_frames: int):
    if config.vae.mode not in ("supervised", "unsupervised"):
      raise ValueError(f"config.vae.mode: '{config.vae.mode}' is not one of "
                       "['supervised', 'unsupervised']")
    self.config = config
    self.norm = state_lib.norm_stats_to_device(norm)
    self.steps_per_epoch = max(1, num_train_frames // config.train.batch_size)
    self.unsupervised = config.vae.mode == "unsupervised"
    names = ["encoder", "decoder"] + (["discriminator"] if self.unsupervised else [])
    model_keys = {"encoder": "vae_encoder", "decoder": "vae_decoder",
                  "discriminator": "pose_discriminator_2d"}
    self.models = {n: registry.build(model_keys[n], config) for n in names}
    v = config.vae
    self.optimizers = {
        "encoder": _clipped_adam(config, v.generator_clip_norm, self.steps_per_epoch),
        "decoder": _clipped_adam(config, v.generator_clip_norm, self.steps_per_epoch),
    }
    if self.unsupervised:
      self.optimizers["discriminator"] = _clipped_adam(config, v.discriminator_clip_norm,
                                                       self.steps_per_epoch)

  def _sample_input(self, name: str) -> jax.Array:
    size = self.config.vae.latent_dim if name == "decoder" else 32
    return jnp.zeros((2, size), jnp.float32)

  def _inputs(self, batch):
    pose_2d, scale = wp.normalise_2d(batch["pose_2d"], batch["camera_f"], batch["camera_c"])
    return pose_2d, scale

  def _projector(self, batch, scale):
    """Normalised 3D -> 2D in the input's units, for this batch's views."""
    if self.config.vae.projection == "orthographic":
      return wp.project
    root_xy = wp.root_image_point(batch["pose_2d"], batch["camera_f"], batch["camera_c"])
    return lambda pose: wp.perspective(pose, scale, root_xy)

  def _lift(self, state, params, pose_2d, train: bool, rng=None):
    """Encoder + decoder; returns (3D (B, 16, 3), mu, log_var, new batch stats)."""
    flat = pose_2d.reshape(pose_2d.shape[0], -1)
    if train:
      (mu, log_var), enc_stats = self._apply(state, "encoder", params["encoder"], flat, True,
                                             jax.random.fold_in(rng, 0))
      z = mu + jnp.exp(0.5 * log_var) * jax.random.normal(jax.random.fold_in(rng, 1), mu.shape)
      pose_3d, dec_stats = self._apply(state, "decoder", params["decoder"], z, True,
                                       jax.random.fold_in(rng, 2))
    else:
      (mu, log_var), enc_stats = self._apply(state, "encoder", params["encoder"], flat, False)
      pose_3d, dec_stats = self._apply(state, "decoder", params["decoder"], mu, False)
    return pose_3d, mu, log_var, {"encoder": enc_stats, "decoder": dec_stats}

  def _discriminate(self, state, params, pose_2d, rng):
    logits, _ = self._apply(state, "discriminator", params,
                            pose_2d.reshape(pose_2d.shape[0], -1), True, rng)
    return logits

  def _rotator(self, batch):
    """(pose, angle) -> the pose rotated about this batch's vertical axis."""
    if self.config.vae.rotation_axis == "camera_y":
      return wp.rotate_about_vertical
    up = batch["camera_up"] / jnp.linalg.norm(batch["camera_up"], axis=-1, keepdims=True)
    return lambda pose, angle: wp.rotate_about_axis(pose, up, angle)

  def _consistency(self, state, params, pose_3d, pose_2d, angle, project, rotate):
    """Chen et al. 2019's geometric self-consistency. The rotated 3D pose is projected and
    brought to unit scale, lifted again and brought back to the first lift's scale; that
    second lift must equal the rotated pose (3D term) and, rotated back and projected,
    reproduce the input (2D term). Both are mean squared joint distances."""
    rotated = rotate(pose_3d, angle)
    view = project(rotated)
    scale = wp.rms_radius(view)[:, None, None]
    relifted, _, _, _ = self._lift(state, params, view / scale, True,
                                   state_lib.stream(state, "vae_relift"))
    relifted = relifted * scale
    back = project(rotate(relifted, -angle))
    return (jnp.mean(jnp.sum((relifted - rotated) ** 2, -1))
            + jnp.mean(jnp.sum((back - pose_2d) ** 2, -1)))

  def train_step(self, state, batch, resident):
    batch = self.frames(state, resident, batch)
    v = self.config.vae
    pose_2d, scale = self._inputs(batch)
    epoch = state.step.astype(jnp.float32) / self.steps_per_epoch
    beta = beta_schedule(epoch, self.config)
    gen_params = {"encoder": state.params["encoder"], "decoder": state.params["decoder"]}
    angle = jax.random.uniform(state_lib.stream(state, "rotation"), (pose_2d.shape[0],),
                               minval=-jnp.pi, maxval=jnp.pi)

    project, rotate = self._projector(batch, scale), self._rotator(batch)

    def reprojected(pose_3d):
      return wp.unit_scale(project(rotate(pose_3d, angle)))

    new_params, new_opt, metrics = {}, {}, {}
    if self.unsupervised:
      fake, _, _, _ = self._lift(state, gen_params, pose_2d, True, state_lib.stream(state, "vae"))
      fake = jax.lax.stop_gradient(reprojected(fake))

      def disc_loss_fn(params):
        rng = state_lib.stream(state, "disc_dropout")
        return (_bce(self._discriminate(state, params, pose_2d, rng), 1.0)
                + _bce(self._discriminate(state, params, fake, jax.random.fold_in(rng, 1)), 0.0))

      disc_loss, grads = jax.value_and_grad(disc_loss_fn)(state.params["discriminator"])
      new_params["discriminator"], new_opt["discriminator"] = self._update(
          state, "discriminator", grads, state.params["discriminator"])
      metrics["discriminator_loss"] = disc_loss

    def gen_loss_fn(params):
      pose_3d, mu, log_var, stats = self._lift(state, params, pose_2d, True,
                                               state_lib.stream(state, "vae"))
      kl = jnp.mean(kl_divergence(mu, log_var))
      terms = {"kl": kl}
      if self.unsupervised:
        terms["reconstruction"] = jnp.mean(jnp.sum((project(pose_3d) - pose_2d) ** 2, -1))
        logits = self._discriminate(state, new_params["discriminator"], reprojected(pose_3d),
                                    state_lib.stream(state, "disc_dropout_g"))
        terms["adversarial"] = _bce(logits, 1.0)
        total = (v.lambda_recon * terms["reconstruction"] + beta * kl
                 + v.lambda_disc * terms["adversarial"])
        if v.lambda_symmetry:
          terms["symmetry"] = bone_symmetry(pose_3d)
          total = total + v.lambda_symmetry * terms["symmetry"]
        if v.lambda_consistency:
          terms["consistency"] = self._consistency(state, params, pose_3d, pose_2d, angle,
                                                   project, rotate)
          total = total + v.lambda_consistency * terms["consistency"]
      else:
        target = wp.normalise_3d(batch["pose_3d"], batch["root_depth"], scale)
        terms["pose_3d"] = jnp.mean(jnp.sum((pose_3d - target) ** 2, -1))
        total = v.lambda_recon * terms["pose_3d"] + beta * kl
      return total, (terms, stats, pose_3d)

    (loss, (terms, stats, pose_3d)), grads = jax.value_and_grad(gen_loss_fn, has_aux=True)(
        gen_params)
    for name in ("encoder", "decoder"):
      new_params[name], new_opt[name] = self._update(state, name, grads[name], gen_params[name])
    state = state.replace(step=state.step + 1, params=new_params,
                          batch_stats={**state.batch_stats, **stats}, opt_state=new_opt)
    predicted = wp.to_mm(pose_3d, batch["root_depth"], scale)
    train_mpjpe = jnp.mean(jnp.linalg.norm(predicted - batch["pose_3d"], axis=-1))
    return state, {"loss": loss, "beta": beta, "train_mpjpe": train_mpjpe, **metrics, **terms}

  def predict(self, state, batch):
    """(B, 17, 3) root-relative mm. The scale comes from the weak-perspective units
    (root depth x 2D scale): a lifter without 3D labels cannot know absolute size."""
    pose_2d, scale = self._inputs(batch)
    pose_3d, _, _, _ = self._lift(state, state.params, pose_2d, False)
    return wp.to_mm(pose_3d, batch["root_depth"], scale)

  def latent_means(self, state, batch):
    pose_2d, _ = self._inputs(batch)
    (mu, _), _ = self._apply(state, "encoder", state.params["encoder"],
                             pose_2d.reshape(pose_2d.shape[0], -1), False)
    return mu
