"""ResNet-18/34/50/101 in torchvision's v1.5 layout (bottlenecks stride on the 3x3 conv),
NHWC, for image backbones (the integral pose net, HMR).

Module and parameter names mirror torchvision's state_dict keys (`layer2_0/downsample_conv`
is `layer2.0.downsample.0`), so `jpose.formats.pretrained` maps ImageNet weights one to one.
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


def conv_nhwc(x: jax.Array, kernel: jax.Array, stride: int, pad: int) -> jax.Array:
  """The standard op: (B, H, W, C) * (k, k, C, F) with stride and symmetric padding."""
  return jax.lax.conv_general_dilated(x, kernel, (stride, stride), ((pad, pad), (pad, pad)),
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def per_platform(*args, cpu, default):
  """`cpu(*args)` where the program is lowered for XLA:CPU, `default(*args)` everywhere
  else (GPU, TPU), chosen per lowering platform by `jax.lax.platform_dependent`.

  The CPU kernels below were measured faster on XLA:CPU only. On a GPU they turn cuDNN
  convolutions into reshaped dots, which crashed XLA:GPU's Triton GEMM fuser (H200,
  jax 0.11.2); so every other backend compiles the standard convolution. Lowering for
  "cuda" on a CPU machine shows exactly what a GPU compiles.
  """
  return jax.lax.platform_dependent(*args, cpu=cpu, default=default)


@jax.custom_vjp
def pointwise_matmul(x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
  """(..., C) @ (C, F) [+ (F,)] -> (..., F): a 1x1 conv's product, whose gradients are
  plain matmuls (and a column sum) over the flattened (N, C) and (N, F) rows.

  JAX's own transpose rule gives the same numbers, but XLA:CPU then lays the cotangent out
  transposed for the weight gradient and runs that gradient outside its fast GEMM path.
  On one core, the integral net's train step (`jpose.bench.integral_net`, batch
  8 at 128²) took 648 ms with it against 540 ms with this rule for ResNet-18, and
  1,478 ms against 989 ms for ResNet-50, whose bottlenecks are mostly 1x1 convs.
  """
  y = jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())))
  return y if bias is None else y + bias


def _pointwise_fwd(x, kernel, bias):
  return pointwise_matmul(x, kernel, bias), (x, kernel, bias)


def _pointwise_bwd(residuals, grad):
  x, kernel, bias = residuals
  rows, grad_rows = x.reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
  grad_x = jax.lax.dot_general(grad_rows, kernel, (((1,), (1,)), ((), ())))
  grad_kernel = jax.lax.dot_general(rows, grad_rows, (((0,), (0,)), ((), ())))
  grad_bias = None if bias is None else jnp.sum(grad_rows, axis=0, dtype=jnp.float32)
  return (grad_x.reshape(x.shape).astype(x.dtype), grad_kernel.astype(kernel.dtype),
          None if bias is None else grad_bias.astype(bias.dtype))


pointwise_matmul.defvjp(_pointwise_fwd, _pointwise_bwd)


class Pointwise(nn.Module):
  """A 1x1 conv (stride s: every s-th row and column): (B, H, W, C) ->
  (B, ceil(H/s), ceil(W/s), features). Its parameters are nn.Conv's ("kernel"
  (1, 1, C, features), optional "bias"), so checkpoints and `jpose.formats.pretrained` see
  a conv. On XLA:CPU it is `pointwise_matmul` (XLA:CPU lowers nn.Conv's 1x1 weight
  gradient as a convolution whose window is the whole feature map); elsewhere the
  standard convolution (`per_platform`).
  """

  features: int
  stride: int = 1
  use_bias: bool = False
  kernel_init: nn.initializers.Initializer = CONV_INIT
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", self.kernel_init, (1, 1, x.shape[-1], self.features),
                        jnp.float32)
    dtype = self.dtype or x.dtype
    bias = (self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            if self.use_bias else None)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    s = self.stride
    y = per_platform(x, kernel, cpu=lambda x, k: pointwise_matmul(x[:, ::s, ::s], k[0, 0], None),
                     default=lambda x, k: conv_nhwc(x, k, s, 0))
    return y if bias is None else y + bias.astype(dtype)


# Convolutions with at most this many output positions run as one im2col matmul.
IM2COL_MAX_POSITIONS = 16


class Conv(nn.Module):
  """A bias-free k x k conv with PyTorch's symmetric padding (k - 1) // 2, and nn.Conv's
  parameter ("kernel" (k, k, C, features)).

  On XLA:CPU only (`per_platform`), small outputs (at most `IM2COL_MAX_POSITIONS`
  positions, e.g. ResNet's last stage on 64² to 128² crops) are computed as im2col patches
  times the (k*k*C, features) kernel through `pointwise_matmul`. XLA:CPU picks a batch-minor layout and a slow path for 3x3
  convs on 1x1 and 2x2 maps: at batch 32 and 512 channels, 366 ms forward on a 2x2 map
  against 3.1 ms as a matmul, one core (4x4: 32 against 26 ms forward + backward; 8x8:
  115 against 129 ms, so larger maps keep lax's conv).
  """

  features: int
  kernel_size: int
  stride: int = 1
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x):
    k, s = self.kernel_size, self.stride
    kernel = self.param("kernel", CONV_INIT, (k, k, x.shape[-1], self.features), jnp.float32)
    dtype = self.dtype or x.dtype
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    pad = (k - 1) // 2
    b, h, w, c = x.shape
    out_h, out_w = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    if out_h * out_w > IM2COL_MAX_POSITIONS:
      return conv_nhwc(x, kernel, s, pad)

    def im2col(x, kernel):
      padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
      patches = jnp.concatenate([
          jax.lax.slice(padded, (0, i, j, 0),
                        (b, i + s * (out_h - 1) + 1, j + s * (out_w - 1) + 1, c),
                        (1, s, s, 1)) for i in range(k) for j in range(k)], axis=-1)
      return pointwise_matmul(patches, kernel.reshape(k * k * c, self.features), None)
    return per_platform(x, kernel, cpu=im2col, default=lambda x, k: conv_nhwc(x, k, s, pad))


def _conv(name: str, features: int, kernel: int, stride: int, dtype) -> nn.Module:
  """A bias-free conv with PyTorch's symmetric padding; 1x1 convs are `Pointwise`."""
  if kernel == 1:
    return Pointwise(features, stride, dtype=dtype, name=name)
  return Conv(features, kernel, stride, dtype, name=name)


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

