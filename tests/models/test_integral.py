"""The integral pose net: pinned parameter counts, volume shapes and channel order, the
head's init, ImageNet weights into the backbone, a bf16 train-step gradient, and (where
torch is installed) the head against PyTorch's ConvTranspose2d."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.formats import torch_files
from jpose.geometry import heatmap
from jpose.losses import integral as integral_losses
from jpose.models import integral
from jpose.formats import pretrained


def _template(model, size=64):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))


def _count(model) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(_template(model)["params"]))


# Backbone without fc (23,508,032 / 11,176,512) + head:
#   deconv 4*4*C*256 + 2 * 4*4*256*256 + 3 BN * 512 + final 256*J*d + J*d.
#   ResNet-50, J=17, d=64: 8,388,608 + 2,097,152 + 1,536 + 279,616 = 10,766,912.
#   ResNet-18, J=17, d=64: 2,097,152 + 2,097,152 + 1,536 + 279,616 = 4,475,456.
#   ResNet-18, J=17, d=32: 2,097,152 + 2,097,152 + 1,536 + 139,808 = 4,335,648.
@pytest.mark.parametrize("depth, bins, count", [
    (50, 64, 34_274_944),
    (18, 64, 15_651_968),
    (18, 32, 15_512_160),
])
def test_parameter_counts(depth, bins, count):
  assert _count(integral.IntegralPoseNet(depth, num_joints=17, depth_bins=bins)) == count


def test_volume_shapes_and_dtype():
  model = integral.IntegralPoseNet(50, num_joints=17, depth_bins=64, dtype=jnp.bfloat16)
  out = jax.eval_shape(model.apply, _template(model), jnp.zeros((2, 256, 256, 3)))
  chex.assert_shape(out, (2, 17, 64, 64, 64))  # (B, J, d, S/4, S/4)
  assert out.dtype == jnp.bfloat16


def test_head_init_and_channel_order():
  head = integral.DeconvHead(num_joints=3, depth_bins=5, features=64)
  variables = jax.jit(head.init)(jax.random.key(0), jnp.zeros((1, 2, 2, 64)))
  params = variables["params"]
  # N(0, 0.001^2) deconv and final kernels (Sun et al.'s DeconvHead): 65,536 draws per
  # deconv (sample std within 0.3%), 960 in the final conv (within 2.3%).
  for name in ("deconv0", "deconv1", "deconv2"):
    np.testing.assert_allclose(float(jnp.std(params[name]["kernel"])), 0.001, rtol=0.02)
  np.testing.assert_allclose(float(jnp.std(params["final"]["kernel"])), 0.001, rtol=0.1)
  np.testing.assert_array_equal(np.asarray(params["final"]["bias"]), 0.0)
  # Channel j * d + k is joint j's depth bin k: a bias on channel 2 * 5 + 3 alone lights
  # up volume [2, 3] everywhere and nothing else.
  params = dict(params, final={"kernel": jnp.zeros_like(params["final"]["kernel"]),
                               "bias": jnp.zeros(15).at[2 * 5 + 3].set(1.0)})
  out = jax.jit(head.apply)(dict(variables, params=params), jnp.ones((1, 2, 2, 64)))
  chex.assert_shape(out, (1, 3, 5, 16, 16))
  lit = np.argwhere(np.asarray(out)[0].max(axis=(2, 3)) > 0)
  np.testing.assert_array_equal(lit, [[2, 3]])


def test_subpixel_upconv_equals_the_transposed_conv():
  # Non-square input with an odd width; reference: flax's own ConvTranspose on the same
  # kernel, and the lax.conv_transpose form (subpixel=False).
  x = jax.random.normal(jax.random.key(0), (2, 3, 5, 8))
  reference = nn.ConvTranspose(6, (4, 4), (2, 2), padding=((2, 2), (2, 2)), use_bias=False,
                               transpose_kernel=True)
  variables = {"params": {"kernel": jax.random.normal(jax.random.key(1), (4, 4, 6, 8))}}
  modules = {"reference": reference, "subpixel": integral.UpConv(6),
             "dilated": integral.UpConv(6, subpixel=False)}

  @jax.jit
  def outputs_and_grads(variables, x):
    out = {}
    for name, module in modules.items():
      f = lambda v, x, module=module: module.apply(v, x)
      out[name] = (f(variables, x), jax.grad(lambda v, x, f=f: jnp.sum(f(v, x) * jnp.cos(f(v, x))),
                                             argnums=(0, 1))(variables, x))
    return out

  out = outputs_and_grads(variables, x)
  chex.assert_shape(out["subpixel"][0], (2, 6, 10, 6))
  # Measured max error, subpixel (sums in another order): 2.9e-6 on outputs up to 17,
  # 1.1e-4 on gradients up to 109; lax form: 0.
  for name in ("subpixel", "dilated"):
    np.testing.assert_allclose(np.asarray(out[name][0]), np.asarray(out["reference"][0]),
                               atol=3e-5)
    chex.assert_trees_all_close(out[name][1], out["reference"][1], atol=1e-3)


def test_imagenet_weights_go_into_the_backbone_only(tmp_path):
  state = torch_files.random_state_dict(torch_files.torchvision_resnet_shapes(18))
  path = str(tmp_path / "resnet18.safetensors")
  torch_files.write_safetensors(path, state)
  model = integral.IntegralPoseNet(18, num_joints=17, depth_bins=8)
  variables = jax.tree.map(lambda x: np.full(x.shape, 3.0, x.dtype), _template(model))
  loaded = pretrained.load_resnet(path, variables, scope=("backbone",))
  np.testing.assert_array_equal(np.asarray(loaded["params"]["backbone"]["conv1"]["kernel"]),
                                state["conv1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(np.asarray(loaded["batch_stats"]["backbone"]["bn1"]["var"]),
                                state["bn1.running_var"])
  for leaf in jax.tree.leaves({k: v["head"] for k, v in loaded.items()}):
    np.testing.assert_array_equal(np.asarray(leaf), 3.0)


def test_a_bf16_train_step_gradient_is_finite_float32():
  # The head alone on (1 x 1) features, as a ResNet gives for 32 x 32 crops: compiling the
  # backbone's backward pass too takes a minute on a shared CPU, and its bf16 dtypes are
  # checked above.
  model = integral.DeconvHead(num_joints=3, depth_bins=4, features=16, dtype=jnp.bfloat16)
  rng = np.random.default_rng(0)  # the head's init distributions, without compiling its init
  variables = jax.tree_util.tree_map_with_path(
      lambda path, x: (np.full(x.shape, path[-1].key in ("scale", "var"), np.float32)
                       if path[-1].key in ("scale", "var", "mean") or path[0].key == "batch_stats"
                       else rng.normal(0, 0.001, x.shape).astype(np.float32)),
      jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 1, 1, 32))))
  images = jax.random.normal(jax.random.key(1), (2, 1, 1, 32)).astype(jnp.bfloat16)
  grid = (4, 8, 8)
  target = jnp.asarray([[[1.0, 2.0, 0.5], [4.0, 4.0, 2.0], [7.5, 7.5, 3.9]]] * 2)

  def loss_fn(params):
    volumes, updates = model.apply({**variables, "params": params}, images, train=True,
                                   mutable=["batch_stats"])
    joints = heatmap.soft_argmax_volumes(volumes)
    ones = jnp.ones((2, 3))
    loss = (integral_losses.integral_l1(joints, target, ones, jnp.ones(2), grid)
            + integral_losses.gaussian_cube_bce(volumes, target, ones))
    return loss, (joints, updates)

  (loss, (joints, _)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      variables["params"])
  chex.assert_shape(joints, (2, 3, 3))
  assert joints.dtype == jnp.float32
  assert bool(jnp.isfinite(loss))
  # Near-zero init logits: every joint starts near the grid's centre (4, 4, 2).
  np.testing.assert_allclose(np.asarray(joints), np.broadcast_to([4.0, 4.0, 2.0], (2, 3, 3)),
                             atol=0.05)
  for leaf in jax.tree.leaves(grads):
    assert leaf.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(leaf)))
  assert float(jnp.max(jnp.abs(grads["final"]["bias"]))) > 0


def test_head_equals_torch_conv_transpose():
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  layers, channels = [], 64
  for _ in range(3):
    layers += [torch.nn.ConvTranspose2d(channels, 32, 4, stride=2, padding=1, bias=False),
               torch.nn.BatchNorm2d(32), torch.nn.ReLU()]
    channels = 32
  layers.append(torch.nn.Conv2d(32, 3 * 5, 1))
  torch_head = torch.nn.Sequential(*layers).eval()
  with torch.no_grad():
    for module in torch_head.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.running_mean.uniform_(-0.5, 0.5)
        module.running_var.uniform_(0.5, 2.0)
  sd = {k: v.numpy() for k, v in torch_head.state_dict().items()}
  params, stats = {}, {}
  for i in range(3):
    # ConvTranspose2d weight (in, out, kh, kw) -> flax transpose_kernel (kh, kw, out, in).
    params[f"deconv{i}"] = {"kernel": sd[f"{3 * i}.weight"].transpose(2, 3, 1, 0)}
    params[f"bn{i}"] = {"scale": sd[f"{3 * i + 1}.weight"], "bias": sd[f"{3 * i + 1}.bias"]}
    stats[f"bn{i}"] = {"mean": sd[f"{3 * i + 1}.running_mean"],
                       "var": sd[f"{3 * i + 1}.running_var"]}
  params["final"] = {"kernel": sd["9.weight"].transpose(2, 3, 1, 0), "bias": sd["9.bias"]}
  features = np.random.default_rng(0).normal(size=(2, 3, 5, 64)).astype(np.float32)
  with torch.no_grad():
    expected = torch_head(torch.from_numpy(features.transpose(0, 3, 1, 2))).numpy()
  head = integral.DeconvHead(num_joints=3, depth_bins=5, features=32)
  out = head.apply({"params": params, "batch_stats": stats}, features)
  # Non-square input: (3, 5) -> (24, 40). Measured max error 9e-8 on values up to 0.29.
  np.testing.assert_allclose(np.asarray(out), expected.reshape(2, 3, 5, 24, 40), atol=1e-6)
