"""HMR's image-to-body regressor and the seed 001 critic (modules only).

`HmrNet`: a ResNet's pooled features feed Kanazawa et al.'s iterative error feedback
(IEF) regressor, which refines Theta = [camera (3), pose (72), shape (10)] from the
mean parameters in `iterations` steps, each [features, Theta_t] -> FC 1024 -> dropout
-> FC 1024 -> dropout -> FC -> Delta Theta. The last layer starts at 1% of Xavier's
scale (HMR's "small xavier"), so Theta starts near the mean.

`HmrCritic`: one WGAN score from three streams (Pittner and Starlinger's Figure 2):
HMR's pose discriminator (23 rotation matrices through a shared two-layer 1x1 conv
with 23 per-joint outputs, plus a whole-pose FC 1024 x 2), RepNet's kinematic chain
space stream (Psi = B^T B of the 23 bone vectors, then FC layers) and HMR's shape
stream (10 -> 5 -> 1), concatenated and mixed by one linear layer. No batch norm: the
WGAN-GP penalty is per sample (Gulrajani et al.).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jpose.models import resnet

NUM_CAMERA = 3  # weak perspective (s, tx, ty).
NUM_POSE = 72  # 24 joints' axis-angles, the global orientation first.
NUM_SHAPE = 10
NUM_THETA = NUM_CAMERA + NUM_POSE + NUM_SHAPE
NUM_BODY_JOINTS = 23  # the critic judges every joint but the root.

# HMR's last regressor layer: variance_scaling(factor=0.01, FAN_AVG, uniform).
_SMALL_XAVIER = nn.initializers.variance_scaling(0.01, "fan_avg", "uniform")


def neutral_theta() -> np.ndarray:
  """(NUM_THETA,) float32 start without a mean-parameter file: HMR's global flip (pi about
  x, so that SMPL's +y up becomes the image's -y up), every other joint at rest, zero betas
  and HMR's initial camera (scale 0.9, no shift: a ~2 m body fills the [-1, 1] crop)."""
  theta = np.zeros(NUM_THETA, np.float32)
  theta[0] = 0.9
  theta[NUM_CAMERA] = np.pi
  return theta


def split_theta(theta: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(..., 85) -> camera (..., 3), pose (..., 24, 3), betas (..., 10)."""
  camera = theta[..., :NUM_CAMERA]
  pose = theta[..., NUM_CAMERA:NUM_CAMERA + NUM_POSE].reshape(theta.shape[:-1] + (24, 3))
  return camera, pose, theta[..., NUM_CAMERA + NUM_POSE:]


class IterativeRegressor(nn.Module):
  """(B, C) features and (85,) mean Theta -> (B, iterations, 85) Theta after each step."""

  iterations: int = 3
  width: int = 1024
  dropout: float = 0.5
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, features, mean_theta, train: bool = False):
    dense = lambda n, name, **kw: nn.Dense(n, dtype=self.dtype, param_dtype=jnp.float32,
                                           name=name, **kw)
    fc1, fc2 = dense(self.width, "fc1"), dense(self.width, "fc2")
    out = dense(NUM_THETA, "delta", kernel_init=_SMALL_XAVIER)
    drop = nn.Dropout(self.dropout, deterministic=not train)
    theta = jnp.broadcast_to(jnp.asarray(mean_theta, jnp.float32),
                             (features.shape[0], NUM_THETA))
    thetas = []
    for _ in range(self.iterations):  # the same layers at every iteration, as in HMR.
      x = jnp.concatenate([features.astype(jnp.float32), theta], axis=-1)
      x = drop(nn.relu(fc1(x)))
      x = drop(nn.relu(fc2(x)))
      theta = theta + out(x).astype(jnp.float32)
      thetas.append(theta)
    return jnp.stack(thetas, axis=1)


class HmrNet(nn.Module):
  """(B, S, S, 3) RGB in [0, 1] -> (B, iterations, 85) Theta (float32).

  The backbone's variables sit under "backbone" (ImageNet weights load with
  `pretrained.load_resnet(path, variables, scope=("backbone",))`)."""

  resnet_depth: int = 50
  iterations: int = 3
  width: int = 1024
  dropout: float = 0.5
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, images, mean_theta, train: bool = False):
    features = resnet.ResNet(self.resnet_depth, dtype=self.dtype, name="backbone")(
        resnet.imagenet_normalize(images), train=train)["pooled"]
    return IterativeRegressor(self.iterations, self.width, self.dropout, self.dtype,
                              name="regressor")(features, mean_theta, train=train)


def kinematic_chain_space(bones):
  """(..., N, 3) bone vectors -> (..., N, N) Psi = B^T B (Wandt and Rosenhahn's KCS):
  bone lengths squared on the diagonal, the angles between bones off it; invariant to
  the pose's global rotation."""
  return jnp.einsum("...ic,...jc->...ij", bones, bones)


class HmrCritic(nn.Module):
  """rotations (B, 23, 3, 3), bones (B, 23, 3) in metres and betas (B, 10) -> (B,)
  WGAN scores (higher: more like the real samples)."""

  conv_features: int = 32
  pose_width: int = 1024
  kcs_width: int = 1024
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, rotations, bones, betas):
    dense = lambda n, name: nn.Dense(n, dtype=self.dtype, param_dtype=jnp.float32, name=name)
    batch, joints = rotations.shape[0], rotations.shape[1]
    # HMR's pose stream: a 1x1 conv over joints is a Dense on each joint's 9 entries.
    x = rotations.reshape(batch, joints, 9)
    x = nn.relu(dense(self.conv_features, "pose_conv1")(x))
    x = nn.relu(dense(self.conv_features, "pose_conv2")(x))
    # One output per joint: 23 separate Dense(1) layers, as one (23, C) weight.
    kernel = self.param("joint_kernel", nn.initializers.lecun_normal(),
                        (joints, self.conv_features, 1), jnp.float32)
    bias = self.param("joint_bias", nn.initializers.zeros, (joints,), jnp.float32)
    per_joint = jnp.einsum("bjc,jc->bj", x.astype(jnp.float32), kernel[..., 0]) + bias
    whole = nn.relu(dense(self.pose_width, "pose_fc1")(x.reshape(batch, -1)))
    whole = nn.relu(dense(self.pose_width, "pose_fc2")(whole))
    whole = dense(1, "pose_out")(whole)
    # RepNet's kinematic chain space stream.
    psi = kinematic_chain_space(bones.astype(jnp.float32)).reshape(batch, -1)
    kcs = nn.relu(dense(self.kcs_width, "kcs_fc1")(psi))
    kcs = nn.relu(dense(self.kcs_width, "kcs_fc2")(kcs))
    kcs = dense(1, "kcs_out")(kcs)
    # HMR's shape stream.
    shape = nn.relu(dense(10, "shape_fc1")(betas))
    shape = nn.relu(dense(5, "shape_fc2")(shape))
    shape = dense(1, "shape_out")(shape)
    scores = jnp.concatenate([per_joint, whole.astype(jnp.float32), kcs.astype(jnp.float32),
                              shape.astype(jnp.float32)], axis=-1)
    return nn.Dense(1, param_dtype=jnp.float32, name="score")(scores)[:, 0]
