"""ResNet: torchvision's parameter counts, init, shapes and dtypes; ImageNet weights read
from hand-written .pth and .safetensors files, and (where torch is installed) the same
outputs as torchvision on the same weights."""

import pickle

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch_files
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


# Weight files ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18_state():
  return torch_files.random_state_dict(torch_files.torchvision_resnet_shapes(18))


@pytest.fixture(scope="module")
def resnet18_files(resnet18_state, tmp_path_factory):
  root = tmp_path_factory.mktemp("weights")
  torch_files.write_torch_zip(root / "resnet18.pth", resnet18_state)
  torch_files.write_safetensors(root / "resnet18.safetensors", resnet18_state)
  return {"pth": str(root / "resnet18.pth"), "safetensors": str(root / "resnet18.safetensors")}


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_readers_return_the_written_tensors(kind, resnet18_files, resnet18_state):
  state = pretrained.read_state_dict(resnet18_files[kind])
  assert list(state) == list(resnet18_state)
  for key, value in resnet18_state.items():
    assert state[key].dtype == value.dtype and state[key].shape == value.shape, key
    np.testing.assert_array_equal(state[key], value)


@pytest.mark.parametrize("kind", ["pth", "safetensors"])
def test_load_resnet_maps_torch_names_and_layouts(kind, resnet18_files, resnet18_state):
  model = resnet.ResNet(18, num_classes=1000)
  loaded = pretrained.load_resnet(resnet18_files[kind], _template(model))
  params, stats = loaded["params"], loaded["batch_stats"]
  sd = resnet18_state
  # Spot checks of each kind of mapping, element by element.
  kernel = np.asarray(params["conv1"]["kernel"])  # HWIO vs OIHW
  assert kernel[1, 2, 0, 5] == sd["conv1.weight"][5, 0, 1, 2]
  assert np.asarray(params["layer2_0"]["downsample_conv"]["kernel"])[0, 0, 63, 100] == (
      sd["layer2.0.downsample.0.weight"][100, 63, 0, 0])
  np.testing.assert_array_equal(np.asarray(stats["layer3_1"]["bn2"]["var"]),
                                sd["layer3.1.bn2.running_var"])
  np.testing.assert_array_equal(np.asarray(stats["layer4_0"]["downsample_bn"]["mean"]),
                                sd["layer4.0.downsample.1.running_mean"])
  np.testing.assert_array_equal(np.asarray(params["layer1_1"]["bn1"]["scale"]),
                                sd["layer1.1.bn1.weight"])
  np.testing.assert_array_equal(np.asarray(params["fc"]["kernel"]), sd["fc.weight"].T)
  # Every tensor but the counters lands somewhere, once: the sums agree.
  total = sum(float(np.sum(v, dtype=np.float64)) for k, v in sd.items()
              if not k.endswith("num_batches_tracked"))
  loaded_total = sum(float(np.sum(np.asarray(v), dtype=np.float64))
                     for v in jax.tree.leaves(loaded))
  np.testing.assert_allclose(loaded_total, total, rtol=1e-9)


def test_a_model_without_classifier_ignores_fc(resnet18_files):
  model = resnet.ResNet(18)
  loaded = pretrained.load_resnet(resnet18_files["safetensors"], _template(model))
  assert "fc" not in loaded["params"]
  assert loaded["params"]["conv1"]["kernel"].shape == (7, 7, 3, 64)


def _write_variant(tmp_path, state, name, kind="safetensors"):
  path = tmp_path / f"{name}.{kind}"
  (torch_files.write_safetensors if kind == "safetensors" else torch_files.write_torch_zip)(
      path, state)
  return str(path)


def test_errors_name_the_file_and_the_tensor(tmp_path, resnet18_state):
  variables = _template(resnet.ResNet(18, num_classes=1000))
  missing = {k: v for k, v in resnet18_state.items() if k != "layer3.1.bn2.running_var"}
  with pytest.raises(KeyError, match=r"missing\.safetensors.*layer3\.1\.bn2\.running_var"):
    pretrained.load_resnet(_write_variant(tmp_path, missing, "missing"), variables)
  wrong = dict(resnet18_state, **{"layer1.0.conv1.weight": np.zeros((64, 64, 1, 1), np.float32)})
  with pytest.raises(ValueError, match=r"layer1\.0\.conv1\.weight.*\(64, 64, 1, 1\)"):
    pretrained.load_resnet(_write_variant(tmp_path, wrong, "wrong"), variables)
  extra = dict(resnet18_state, **{"layer5.0.conv1.weight": np.zeros((1,), np.float32)})
  with pytest.raises(ValueError, match=r"layer5\.0\.conv1\.weight"):
    pretrained.load_resnet(_write_variant(tmp_path, extra, "extra", "pth"), variables)
  resnet50 = _template(resnet.ResNet(50))
  with pytest.raises((KeyError, ValueError), match="resnet18"):
    pretrained.load_resnet(_write_variant(tmp_path, resnet18_state, "resnet18"), resnet50)
  with pytest.raises(FileNotFoundError, match="nowhere.pth"):
    pretrained.read_state_dict(str(tmp_path / "nowhere.pth"))


def test_malformed_files(tmp_path):
  bad = tmp_path / "bad.safetensors"
  bad.write_bytes(b"\xff\x00\x00\x00\x00\x00\x00\x00{}")
  with pytest.raises(ValueError, match="bad.safetensors.*header length"):
    pretrained.read_state_dict(str(bad))
  short = tmp_path / "short.safetensors"
  torch_files.write_safetensors(short, {"w": np.zeros((4, 4), np.float32)})
  short.write_bytes(short.read_bytes()[:-8])
  with pytest.raises(ValueError, match=r"short.safetensors: tensor w"):
    pretrained.read_state_dict(str(short))
  junk = tmp_path / "junk.pth"  # a pickle of the int 5, then nothing: not the legacy format
  junk.write_bytes(pickle.PROTO + b"\x02" + pickle.BININT1 + b"\x05" + pickle.STOP)
  with pytest.raises(ValueError, match="junk.pth: not a torch checkpoint"):
    pretrained.read_state_dict(str(junk))


def test_a_pth_that_would_run_code_is_refused(tmp_path):
  # pickle for os.system("touch <marker>"): the reader must refuse the global, not call it.
  marker = tmp_path / "ran"
  evil = (pickle.PROTO + b"\x02" + pickle.GLOBAL + b"os\nsystem\n" + pickle.MARK
          + pickle.BINUNICODE + len(f"touch {marker}").to_bytes(4, "little")
          + f"touch {marker}".encode() + pickle.TUPLE + pickle.REDUCE + pickle.STOP)
  path = tmp_path / "evil.pth"
  torch_files.write_torch_zip(path, {}, pickle_bytes=evil)
  with pytest.raises(pickle.UnpicklingError, match="evil.pth.*os.system"):
    pretrained.read_state_dict(str(path))
  assert not marker.exists()


def test_half_precision_safetensors(tmp_path):
  import ml_dtypes  # jax's own dependency
  path = tmp_path / "half.safetensors"
  values = np.array([1.5, -2.25, 65504.0], np.float16)
  torch_files.write_safetensors(path, {"h": values})
  np.testing.assert_array_equal(pretrained.read_state_dict(str(path))["h"], values)
  # bf16 by hand: the top 16 bits of the float32 pattern.
  b16 = np.array([1.0, -3.5, 0.15625], np.float32)
  raw = (b16.view(np.uint32) >> 16).astype("<u2").tobytes()
  header = b'{"b":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]}}'
  (tmp_path / "b.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + raw)
  got = pretrained.read_state_dict(str(tmp_path / "b.safetensors"))["b"]
  assert got.dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(got.astype(np.float32), b16)


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


def test_torch_load_reads_the_hand_written_pth(resnet18_files, resnet18_state):
  torch = pytest.importorskip("torch")
  state = torch.load(resnet18_files["pth"], weights_only=True)
  assert list(state) == list(resnet18_state)
  for key, value in resnet18_state.items():
    np.testing.assert_array_equal(state[key].numpy(), value)


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
