"""ResNet-18/34/50/101 in torchvision's v1.5 layout (bottlenecks stride on the 3x3 conv),
NHWC, for image backbones (the integral pose net, HMR).

Module and parameter names mirror torchvision's state_dict keys (`layer2_0/downsample_conv`
is `layer2.0.downsample.0`), so `jpose.models.pretrained` maps ImageNet weights one to one.
Padding is explicit and symmetric, as PyTorch's: flax's "SAME" pads (0, 1) at stride 2 on
even sizes, which would shift every feature map by half a pixel against the weights.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

# torchvision's ImageNet statistics for RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# depth -> (block kind, blocks per stage).
LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}

# torchvision's init: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv
# (untruncated normal, variance 2 / (out_channels * kh * kw)).
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# nn.Linear's default: weight and bias U(+-1/sqrt(fan_in)).
FC_KERNEL_INIT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _fc_bias_init(fan_in: int):
  bound = 1.0 / fan_in**0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def imagenet_normalize(images: jax.Array) -> jax.Array:
  """(..., 3) RGB in [0, 1] -> torchvision's normalised input (float32)."""
  mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
  std = jnp.asarray(IMAGENET_STD, jnp.float32)
  return (images.astype(jnp.float32) - mean) / std


def _conv(name: str, features: int, kernel: int, stride: int, dtype) -> nn.Conv:
  """A bias-free conv with PyTorch's symmetric padding (kernel - 1) // 2."""
  pad = (kernel - 1) // 2
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=((pad, pad), (pad, pad)),
                 use_bias=False, kernel_init=CONV_INIT, dtype=dtype, param_dtype=jnp.float32,
                 name=name)


def _bn(name: str, train: bool, dtype) -> nn.BatchNorm:
  """Batch norm with PyTorch's defaults; scale, bias and statistics in float32.

  flax momentum is the running average's keep rate: 0.9 is PyTorch's momentum 0.1.
  """
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype,
                      param_dtype=jnp.float32, name=name)


class BasicBlock(nn.Module):
  """Two 3x3 convs; ResNet-18/34."""

  features: int
  stride: int = 1
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool):
    conv = lambda name, features, kernel, stride: _conv(name, features, kernel, stride,
                                                        self.dtype)
    bn = lambda name: _bn(name, train, self.dtype)
    y = nn.relu(bn("bn1")(conv("conv1", self.features, 3, self.stride)(x)))
    y = bn("bn2")(conv("conv2", self.features, 3, 1)(y))
    if self.stride != 1 or x.shape[-1] != self.features:
      x = bn("downsample_bn")(conv("downsample_conv", self.features, 1, self.stride)(x))
    return nn.relu(x + y)


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (strided: v1.5) -> 1x1 to 4x `features`; ResNet-50/101."""

  features: int
  stride: int = 1
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool):
    conv = lambda name, features, kernel, stride: _conv(name, features, kernel, stride,
                                                        self.dtype)
    bn = lambda name: _bn(name, train, self.dtype)
    out = self.features * EXPANSION["bottleneck"]
    y = nn.relu(bn("bn1")(conv("conv1", self.features, 1, 1)(x)))
    y = nn.relu(bn("bn2")(conv("conv2", self.features, 3, self.stride)(y)))
    y = bn("bn3")(conv("conv3", out, 1, 1)(y))
    if self.stride != 1 or x.shape[-1] != out:
      x = bn("downsample_bn")(conv("downsample_conv", out, 1, self.stride)(x))
    return nn.relu(x + y)


class ResNet(nn.Module):
  """(B, H, W, 3) ImageNet-normalised images -> dict of

    "features": (B, ceil(H/32), ceil(W/32), C), C = 512 (18/34) or 2048 (50/101),
                in the compute dtype;
    "pooled":   (B, C) float32, the global average (HMR's 2048-d image feature);
    "logits":   (B, num_classes) float32, only when num_classes is set (the ImageNet fc).

  Normalise [0, 1] images with `imagenet_normalize` first (the backbones' callers do).
  """

  depth: int = 50
  num_classes: int | None = None
  dtype: jnp.dtype | None = None

  @property
  def num_features(self) -> int:
    kind, _ = LAYOUTS[self.depth]
    return 512 * EXPANSION[kind]

  @nn.compact
  def __call__(self, images, train: bool = False) -> dict[str, jax.Array]:
    if self.depth not in LAYOUTS:
      raise ValueError(f"ResNet depth {self.depth} unknown; known: {sorted(LAYOUTS)}")
    kind, blocks = LAYOUTS[self.depth]
    block_cls = BasicBlock if kind == "basic" else Bottleneck
    x = images.astype(self.dtype or images.dtype)
    x = nn.relu(_bn("bn1", train, self.dtype)(_conv("conv1", 64, 7, 2, self.dtype)(x)))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for stage, (num_blocks, width) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
      for b in range(num_blocks):
        stride = 2 if stage > 1 and b == 0 else 1
        x = block_cls(width, stride, self.dtype, name=f"layer{stage}_{b}")(x, train)
    out = {"features": x, "pooled": jnp.mean(x.astype(jnp.float32), axis=(1, 2))}
    if self.num_classes:
      fan_in = x.shape[-1]
      out["logits"] = nn.Dense(self.num_classes, kernel_init=FC_KERNEL_INIT,
                               bias_init=_fc_bias_init(fan_in), dtype=jnp.float32,
                               param_dtype=jnp.float32, name="fc")(out["pooled"])
    return out

