"""The integral pose net (Sun et al. 2018): a ResNet, the simple-baselines deconv head
(Xiao et al. 2018) and one (d, h, w) volume of logits per joint.

Head, as in Sun et al.'s `DeconvHead` (and Xiao et al.'s simple baselines): three 4x4
stride-2 transposed convs of 256 channels without bias, each with batch norm and ReLU,
then a 1x1 conv with bias to J * d channels; transposed-conv and final-conv weights
N(0, 0.001^2), final bias 0, batch norm 1 / 0. Channel j * d + k is joint j's depth bin k,
Sun et al.'s order. An S x S crop gives (S/4) x (S/4) x d volumes.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose.models import resnet

HEAD_INIT = nn.initializers.normal(stddev=0.001)


class DeconvHead(nn.Module):
  """(B, h, w, C) features -> (B, J, d, 8h, 8w) logits in the compute dtype."""

  num_joints: int = 17
  depth_bins: int = 64
  features: int = 256
  num_layers: int = 3
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    for i in range(self.num_layers):
      # PyTorch's ConvTranspose2d(kernel 4, stride 2, padding 1) = the transpose of a conv
      # (transpose_kernel) over the input dilated by 2 and padded by kernel - 1 - 1 = 2.
      x = nn.ConvTranspose(self.features, (4, 4), (2, 2), padding=((2, 2), (2, 2)),
                           use_bias=False, transpose_kernel=True, kernel_init=HEAD_INIT,
                           dtype=self.dtype, param_dtype=jnp.float32, name=f"deconv{i}")(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype, param_dtype=jnp.float32, name=f"bn{i}")(x)
      x = nn.relu(x)
    x = nn.Conv(self.num_joints * self.depth_bins, (1, 1), kernel_init=HEAD_INIT,
                bias_init=nn.initializers.zeros, dtype=self.dtype, param_dtype=jnp.float32,
                name="final")(x)
    b, h, w, _ = x.shape
    x = x.reshape(b, h, w, self.num_joints, self.depth_bins)
    return jnp.transpose(x, (0, 3, 4, 1, 2))


class IntegralPoseNet(nn.Module):
  """(B, S, S, 3) RGB in [0, 1] -> (B, J, d, S/4, S/4) heatmap logits (compute dtype).

  Joints come from `jpose.geometry.heatmap.soft_argmax_volumes` (voxel units), which
  accumulates in float32 whatever the logits' dtype. The backbone's variables sit under
  "backbone" (load ImageNet weights with
  `pretrained.load_resnet(path, variables, scope=("backbone",))`), the head's under "head".
  """

  resnet_depth: int = 50
  num_joints: int = 17
  depth_bins: int = 64
  head_features: int = 256
  head_layers: int = 3
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, images, train: bool = False) -> jax.Array:
    x = resnet.imagenet_normalize(images)
    features = resnet.ResNet(self.resnet_depth, dtype=self.dtype, name="backbone")(
        x, train)["features"]
    return DeconvHead(self.num_joints, self.depth_bins, self.head_features, self.head_layers,
                      dtype=self.dtype, name="head")(features, train)
