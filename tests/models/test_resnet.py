"""ResNet: torchvision's parameter counts, init, shapes and dtypes, and (where torch is
installed) the same outputs as torchvision on the same weights. The weight-file readers
are tested in tests/formats/test_pretrained.py."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.formats import torch_files
from jpose.formats import pretrained
from jpose.models import resnet


def _template(model, size=32):
  """The variables' shapes and dtypes, without running an init (slow on a shared CPU)."""
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))


def _random_variables(model, seed=0):
  """Variables of the model's shapes filled with N(0, 0.1) (variances U(0.5, 2))."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(
      lambda path, x: (rng.uniform(0.5, 2.0, x.shape) if path[-1].key == "var"
                       else rng.normal(0, 0.1, x.shape)).astype(np.float32), _template(model))


def _count(model) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(_template(model)["params"]))


# torchvision's published counts with the 1000-way fc. Without it: less 512*1000 + 1000
# = 513,000 (18/34) or 2048*1000 + 1000 = 2,049,000 (50/101).
@pytest.mark.parametrize("depth, with_fc, without_fc", [
    (18, 11_689_512, 11_176_512),
    (34, 21_797_672, 21_284_672),
    (50, 25_557_032, 23_508_032),
    (101, 44_549_160, 42_500_160),
])
def test_parameter_counts(depth, with_fc, without_fc):
  assert _count(resnet.ResNet(depth, num_classes=1000)) == with_fc
  assert _count(resnet.ResNet(depth)) == without_fc


def test_shapes_and_bf16_compute_with_float32_parameters():
  model = resnet.ResNet(18, num_classes=10, dtype=jnp.bfloat16)
  variables = _template(model)
  for leaf in jax.tree.leaves(variables):
    assert leaf.dtype == jnp.float32
  out = jax.eval_shape(model.apply, variables, jnp.ones((2, 64, 64, 3)))
  chex.assert_shape(out["features"], (2, 2, 2, 512))
  chex.assert_shape(out["pooled"], (2, 512))
  chex.assert_shape(out["logits"], (2, 10))
  assert out["features"].dtype == jnp.bfloat16
  assert out["pooled"].dtype == jnp.float32 and out["logits"].dtype == jnp.float32
  # An odd size rounds up at every stride-2 stage, as torchvision's padding does: 50 ->
  # 25 -> 13 -> 7 -> 4 -> 2.
  chex.assert_shape(jax.eval_shape(model.apply, variables, jnp.ones((1, 50, 50, 3)))["features"],
                    (1, 2, 2, 512))
  # Channels of ResNet-50: 2048.
  chex.assert_shape(jax.eval_shape(resnet.ResNet(50).apply, _template(resnet.ResNet(50)),
                                   jnp.ones((1, 64, 64, 3)))["pooled"], (1, 2048))


@pytest.mark.parametrize("stride, use_bias, size", [(1, True, 6), (2, False, 7), (2, False, 6)])
def test_pointwise_is_a_1x1_conv_forward_and_backward(stride, use_bias, size):
  """`Pointwise` (a matmul with its own VJP) against nn.Conv 1x1 on the same parameters:
  outputs, and the gradients of <output, cotangent> for the input, kernel and bias. Odd
  sizes at stride 2 keep the last row, as PyTorch's padding-0 1x1 conv does."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, size, size, 8)), jnp.float32)
  pointwise = resnet.Pointwise(5, stride, use_bias=use_bias)
  conv = nn.Conv(5, (1, 1), (stride, stride), padding="VALID", use_bias=use_bias)
  variables = jax.tree.map(lambda a: jnp.asarray(rng.normal(size=a.shape), jnp.float32),
                           pointwise.init(jax.random.key(0), x))
  out = pointwise.apply(variables, x)
  chex.assert_shape(out, (2, -(-size // stride), -(-size // stride), 5))
  cotangent = jnp.asarray(rng.normal(size=out.shape), jnp.float32)
  grads = [jax.grad(lambda v, x, m=m: jnp.vdot(m.apply(v, x), cotangent), (0, 1))(variables, x)
           for m in (pointwise, conv)]
  # Measured: outputs within 9.6e-7, gradients (magnitudes up to ~20) within 5.3e-6.
  np.testing.assert_allclose(out, conv.apply(variables, x), atol=1e-5)
  chex.assert_trees_all_close(grads[0], grads[1], atol=5e-5)


@pytest.mark.parametrize("kernel, stride, size", [(3, 1, 2), (3, 2, 4), (3, 2, 7), (3, 1, 4),
                                                  (7, 2, 5)])
def test_small_maps_run_as_im2col_with_the_conv_numbers(kernel, stride, size):
  """`Conv` on outputs of at most IM2COL_MAX_POSITIONS positions (the im2col matmul)
  against nn.Conv with PyTorch's padding: outputs and gradients."""
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(2, size, size, 6)), jnp.float32)
  pad = (kernel - 1) // 2
  ours = resnet.Conv(4, kernel, stride)
  ref = nn.Conv(4, (kernel, kernel), (stride, stride), padding=((pad, pad), (pad, pad)),
                use_bias=False)
  variables = ours.init(jax.random.key(0), x)
  out = ours.apply(variables, x)
  assert out.shape[1] * out.shape[2] <= resnet.IM2COL_MAX_POSITIONS
  cotangent = jnp.asarray(rng.normal(size=out.shape), jnp.float32)
  grads = [jax.grad(lambda v, x, m=m: jnp.vdot(m.apply(v, x), cotangent), (0, 1))(variables, x)
           for m in (ours, ref)]
  # Measured: outputs within 9.6e-7, gradients (magnitudes up to ~18) within 2.9e-6.
  np.testing.assert_allclose(out, ref.apply(variables, x), atol=1e-5)
  chex.assert_trees_all_close(grads[0], grads[1], atol=3e-5)


def test_torchvision_init():
  block = resnet.BasicBlock(128, stride=2)
  params = jax.jit(block.init, static_argnums=2)(jax.random.key(0), jnp.zeros((1, 4, 4, 64)),
                                                 False)["params"]
  kernel = np.asarray(params["conv2"]["kernel"])  # 3x3, 128 -> 128: 147,456 draws
  # kaiming_normal_(fan_out, relu): std sqrt(2 / (128 * 9)) = 0.0417 (sample std within
  # 0.4%); an untruncated normal's kurtosis is 3 (sample sd 0.013; a 2-sigma truncated
  # normal, flax's usual, has 2.4).
  np.testing.assert_allclose(kernel.std(), np.sqrt(2 / (128 * 9)), rtol=0.02)
  centred = kernel - kernel.mean()
  np.testing.assert_allclose(np.mean(centred**4) / np.mean(centred**2)**2, 3.0, atol=0.1)
  for name in ("bn1", "bn2", "downsample_bn"):  # every gamma 1 (no zero-init), beta 0
    np.testing.assert_array_equal(np.asarray(params[name]["scale"]), 1.0)
    np.testing.assert_array_equal(np.asarray(params[name]["bias"]), 0.0)
  # nn.Linear's default for the fc: weight and bias U(+-1/sqrt(fan_in)).
  fc = jax.eval_shape(lambda: resnet.ResNet(50, num_classes=1000).init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3))))["params"]["fc"]
  assert fc["kernel"].shape == (2048, 1000)
  bound = 1 / np.sqrt(2048)
  for leaf in (resnet.FC_KERNEL_INIT(jax.random.key(1), (2048, 1000)),
               resnet._fc_bias_init(2048)(jax.random.key(2), (1000,))):  # pylint: disable=protected-access
    assert bound * 0.99 < float(jnp.max(jnp.abs(leaf))) <= bound


def test_train_mode_updates_batch_statistics_with_torch_momentum():
  block = resnet.BasicBlock(8)
  x = jax.random.normal(jax.random.key(1), (4, 6, 6, 8)) * 2 + 3
  variables = jax.eval_shape(lambda: block.init(jax.random.key(0), x, False))
  rng = np.random.default_rng(0)
  variables = jax.tree.map(lambda v: rng.uniform(0.5, 1.5, v.shape).astype(np.float32),
                           variables)
  _, updates = jax.jit(lambda v, x: block.apply(v, x, True, mutable=["batch_stats"]))(
      variables, x)
  # bn1's batch mean is conv1's output mean; new running mean = 0.9 * old + 0.1 * it
  # (PyTorch's momentum 0.1).
  conv = jax.lax.conv_general_dilated(
      x, variables["params"]["conv1"]["kernel"], (1, 1), ((1, 1), (1, 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))
  expected = 0.9 * variables["batch_stats"]["bn1"]["mean"] + 0.1 * conv.mean((0, 1, 2))
  np.testing.assert_allclose(np.asarray(updates["batch_stats"]["bn1"]["mean"]),
                             np.asarray(expected), rtol=1e-5)  # measured 1.2e-7


# Against torch/torchvision (skipped where they are not installed) -----------------------

def _torchvision_resnet(depth):
  torch = pytest.importorskip("torch")
  torchvision = pytest.importorskip("torchvision")
  torch.manual_seed(0)
  model = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
  with torch.no_grad():  # non-trivial statistics, so a swapped mean/var cannot pass
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        module.running_mean.uniform_(-0.5, 0.5)
        module.running_var.uniform_(0.5, 2.0)
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
  return torch, model


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_state_dict_layout_matches_the_writer(depth):
  _, model = _torchvision_resnet(depth)
  expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
  assert torch_files.torchvision_resnet_shapes(depth) == expected


@pytest.mark.parametrize("depth, zip_format, tolerance", [
    # Measured max |logit error|: 2.3e-6 (18, logits up to 2.5) and 8.4e-5 (50, logits up
    # to 54: relative 1.6e-6), the same for both file formats.
    (18, True, 2e-5), (18, False, 2e-5), (50, True, 1e-3),
])
def test_same_outputs_as_torchvision(depth, zip_format, tolerance, tmp_path):
  torch, model = _torchvision_resnet(depth)
  path = str(tmp_path / f"resnet{depth}.pth")
  torch.save(model.state_dict(), path, _use_new_zipfile_serialization=zip_format)
  images = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  features = {}
  model.layer4.register_forward_hook(lambda m, i, o: features.update(out=o))
  with torch.no_grad():
    logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
  ours_model = resnet.ResNet(depth, num_classes=1000)
  ours = jax.jit(ours_model.apply)(pretrained.load_resnet(path, _template(ours_model)), images)
  np.testing.assert_allclose(np.asarray(ours["logits"]), logits, atol=tolerance, rtol=0)
  np.testing.assert_allclose(np.asarray(ours["features"]),
                             features["out"].numpy().transpose(0, 2, 3, 1), atol=tolerance,
                             rtol=0)


@pytest.mark.parametrize("zip_format", [True, False])
def test_reader_follows_torch_views_strides_and_dtypes(zip_format, tmp_path):
  torch = pytest.importorskip("torch")
  t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
  saved = {"a": t, "view": t[1:, 1:3], "transposed": t.T, "half": t.half(),
           "counter": torch.tensor(5)}
  path = str(tmp_path / "views.pth")
  torch.save(saved, path, _use_new_zipfile_serialization=zip_format)
  state = pretrained.read_state_dict(path)
  for key, value in saved.items():
    assert state[key].dtype == value.numpy().dtype, key
    np.testing.assert_array_equal(state[key], value.numpy())
