"""ImageNet weights read from hand-written .pth and .safetensors files
(jpose.formats.pretrained): tensors, torch names and layouts, and the errors that name
the file and the tensor."""

import pickle

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from jpose.formats import pretrained
from jpose.models import resnet
from tests.formats import torch_files


def _template(model, size=32):
  """The variables' shapes and dtypes, without running an init."""
  return jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))


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


def test_torch_load_reads_the_hand_written_pth(resnet18_files, resnet18_state):
  torch = pytest.importorskip("torch")
  state = torch.load(resnet18_files["pth"], weights_only=True)
  assert list(state) == list(resnet18_state)
  for key, value in resnet18_state.items():
    np.testing.assert_array_equal(state[key].numpy(), value)
