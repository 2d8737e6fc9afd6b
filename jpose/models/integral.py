"""The integral pose net (Sun et al. 2018): a ResNet, the simple-baselines deconv head
(Xiao et al. 2018) and one (d, h, w) volume of logits per joint.

Head, as in Sun et al.'s `DeconvHead` (and Xiao et al.'s simple baselines): three 4x4
stride-2 transposed convs of 256 channels without bias, each with batch norm and ReLU,
then a 1x1 conv with bias to J * d channels; transposed-conv and final-conv weights
N(0, 0.001^2), final bias 0, batch norm 1 / 0. Channel j * d + k is joint j's depth bin k,
Sun et al.'s order. An S x S crop gives (S/4) x (S/4) x d volumes. The transposed convs
are computed as sub-pixel convs (`UpConv`), with PyTorch's parameters and outputs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jpose.models import resnet

HEAD_INIT = nn.initializers.normal(stddev=0.001)
# PyTorch's ConvTranspose2d(4, stride 2, padding 1) writes output row 2m + p from input rows
# m - 1, m (p = 0) or m, m + 1 (p = 1) through kernel rows (3, 1) or (2, 0); same for columns.
_PHASE_TAPS = (slice(3, None, -2), slice(2, None, -2))
_PHASE_PADS = ((1, 0), (0, 1))


class UpConv(nn.Module):
  """PyTorch's ConvTranspose2d(kernel 4, stride 2, padding 1, no bias): (B, h, w, C) ->
  (B, 2h, 2w, features); kernel (4, 4, features, C) = torch's weight.transpose(2, 3, 1, 0),
  the layout of flax's ConvTranspose(transpose_kernel=True).

  With `subpixel` (the default) each of the 4 output phases (row, column parity) is a 2x2
  conv of the input, interleaved after: the same outputs and exactly the useful
  multiply-adds. lax.conv_transpose (subpixel=False) convolves the 2x zero-dilated input,
  4x the work, and XLA:CPU differentiates it slowly: forward + backward of 16x16x256 ->
  32x32x256 at batch 8 took 13.0 s against 0.37 s sub-pixel (forward alone 0.13 s) on a
  2-core CPU. On GPUs (cuDNN's transposed convs) compare both before choosing.
  """

  features: int
  subpixel: bool = True
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", HEAD_INIT, (4, 4, self.features, x.shape[-1]), jnp.float32)
    dtype = self.dtype or x.dtype
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    if not self.subpixel:
      # The transpose of a conv over the input dilated by 2, padded by 4 - 1 - 1 = 2.
      return jax.lax.conv_transpose(x, kernel, (2, 2), ((2, 2), (2, 2)),
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                    transpose_kernel=True)
    rows = []
    for py in range(2):
      cols = []
      for px in range(2):
        taps = kernel[_PHASE_TAPS[py], _PHASE_TAPS[px]]  # (2, 2, features, C)
        cols.append(jax.lax.conv_general_dilated(
            x, jnp.swapaxes(taps, 2, 3), (1, 1), (_PHASE_PADS[py], _PHASE_PADS[px]),
            dimension_numbers=("NHWC", "HWIO", "NHWC")))
      rows.append(jnp.stack(cols, axis=3))  # (B, h, w, px, C)
    b, h, w, _, c = rows[0].shape
    out = jnp.stack(rows, axis=2)  # (B, h, py, w, px, C)
    return out.reshape(b, 2 * h, 2 * w, c)


class DeconvHead(nn.Module):
  """(B, h, w, C) features -> (B, J, d, 8h, 8w) logits in the compute dtype."""

  num_joints: int = 17
  depth_bins: int = 64
  features: int = 256
  num_layers: int = 3
  subpixel: bool = True
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    for i in range(self.num_layers):
      x = UpConv(self.features, self.subpixel, self.dtype, name=f"deconv{i}")(x)
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                       dtype=self.dtype, param_dtype=jnp.float32, name=f"bn{i}")(x)
      x = nn.relu(x)
    x = resnet.Pointwise(self.num_joints * self.depth_bins, use_bias=True,
                         kernel_init=HEAD_INIT, dtype=self.dtype, name="final")(x)
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
