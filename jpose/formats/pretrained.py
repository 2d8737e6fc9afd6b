"""ImageNet weights from the files users have, without torch: torchvision `.pth` checkpoints
(the zip format of torch >= 1.6 and the older single-pickle format) and timm/HF
`.safetensors`, read into numpy and mapped onto `jpose.models.resnet.ResNet`'s variables.

A `.pth` is a pickle whose tensors point at storages by persistent id; the unpickler here
allows only the few globals a state_dict needs (an OrderedDict, tensor/parameter rebuilds,
typed storages), so a checkpoint cannot run arbitrary code on load.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import pickle
import struct
import zipfile
from typing import Any, Mapping, Sequence

import ml_dtypes
import numpy as np

# torch's typed storage classes (what `torch.save` pickles) -> element dtype.
_TORCH_STORAGES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}
# Pickled in the legacy format's preamble.
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
_LEGACY_PROTOCOL = 1001


@dataclasses.dataclass(frozen=True)
class _StorageType:
  dtype: Any


@dataclasses.dataclass
class _Storage:
  key: str
  dtype: Any
  numel: int
  data: np.ndarray | None = None  # filled once the bytes are read


@dataclasses.dataclass
class _StorageView:
  """The legacy format's view of `numel` elements of a root storage from `offset`."""
  base: _Storage
  offset: int
  numel: int

  @property
  def data(self) -> np.ndarray:
    return self.base.data[self.offset:self.offset + self.numel]


@dataclasses.dataclass
class _TensorRef:
  storage: _Storage | _StorageView
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *unused_args):
  return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused_args):
  return data


class _StateDictUnpickler(pickle.Unpickler):
  """Unpickles a state_dict with tensors as `_TensorRef`s; refuses any other global."""

  def __init__(self, file, path: str):
    super().__init__(file)
    self.path = path
    self.storages: dict[str, _Storage] = {}

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor_v2
    if (module, name) == ("torch._utils", "_rebuild_parameter"):
      return _rebuild_parameter
    if module == "torch" and name in _TORCH_STORAGES:
      return _StorageType(_TORCH_STORAGES[name])
    raise pickle.UnpicklingError(
        f"{self.path}: unsupported object {module}.{name} in the checkpoint; only state_dicts "
        "of plain tensors are read")

  def persistent_load(self, pid):
    # Zip format: ('storage', type, key, location, numel); legacy format adds view_metadata.
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
      raise pickle.UnpicklingError(f"{self.path}: unknown persistent id {pid!r}")
    storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
    if not isinstance(storage_type, _StorageType):
      raise pickle.UnpicklingError(f"{self.path}: storage {key} has unknown type {storage_type}")
    if key not in self.storages:
      self.storages[key] = _Storage(key, storage_type.dtype, numel)
    view = pid[5] if len(pid) > 5 else None
    if view is not None:  # (view key, element offset, view numel) into the root storage
      return _StorageView(self.storages[key], int(view[1]), int(view[2]))
    return self.storages[key]


def _materialise(obj, path: str):
  """Replaces every `_TensorRef` in a (nested) dict by a numpy array (a copy)."""
  if isinstance(obj, _TensorRef):
    data = obj.storage.data
    itemsize = data.itemsize
    needed = obj.offset + sum((n - 1) * s for n, s in zip(obj.size, obj.stride)) + 1
    if any(n == 0 for n in obj.size):
      return np.zeros(obj.size, data.dtype)
    if needed > data.size:
      raise ValueError(f"{path}: a tensor of size {obj.size} overruns its storage "
                       f"({data.size} elements)")
    view = np.lib.stride_tricks.as_strided(
        data[obj.offset:], obj.size, tuple(s * itemsize for s in obj.stride))
    return np.array(view)
  if isinstance(obj, Mapping):
    return {k: _materialise(v, path) for k, v in obj.items()}
  return obj


def _read_torch_zip(path: str) -> dict:
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      raise ValueError(f"{path}: expected one <prefix>/data.pkl in the zip, found {pickles}")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = prefix + "byteorder"
    if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
      raise ValueError(f"{path}: big-endian checkpoints are not supported")
    unpickler = _StateDictUnpickler(io.BytesIO(archive.read(pickles[0])), path)
    obj = unpickler.load()
    for storage in unpickler.storages.values():
      name = f"{prefix}data/{storage.key}"
      try:
        raw = archive.read(name)
      except KeyError:
        raise ValueError(f"{path}: storage record {name} is missing from the zip") from None
      data = np.frombuffer(raw, dtype=np.dtype(storage.dtype).newbyteorder("<"))
      if data.size < storage.numel:
        raise ValueError(f"{path}: storage {name} holds {data.size} elements, the pickle "
                         f"says {storage.numel}")
      storage.data = data
  return _materialise(obj, path)


def _read_torch_legacy(path: str) -> dict:
  """torch < 1.6's format: pickles of (magic, protocol, sys_info, object, storage keys),
  then each storage as an int64 element count and its raw little-endian bytes."""
  with open(path, "rb") as f:
    try:
      header = [_StateDictUnpickler(f, path).load() for _ in range(3)]
    except (pickle.UnpicklingError, EOFError) as e:
      raise ValueError(f"{path}: not a torch checkpoint ({e})") from None
    if header[0] != _LEGACY_MAGIC or header[1] != _LEGACY_PROTOCOL:
      raise ValueError(f"{path}: not a torch checkpoint (bad magic number or protocol)")
    if not header[2].get("little_endian", True):
      raise ValueError(f"{path}: big-endian checkpoints are not supported")
    unpickler = _StateDictUnpickler(f, path)
    obj = unpickler.load()
    keys = _StateDictUnpickler(f, path).load()
    for key in keys:
      storage = unpickler.storages[str(key)]
      (numel,) = struct.unpack("<q", f.read(8))
      dtype = np.dtype(storage.dtype).newbyteorder("<")
      raw = f.read(numel * dtype.itemsize)
      if len(raw) != numel * dtype.itemsize:
        raise ValueError(f"{path}: file ends inside storage {key}")
      storage.data = np.frombuffer(raw, dtype=dtype)
  return _materialise(obj, path)


def read_safetensors(path: str) -> dict[str, np.ndarray]:
  """A `.safetensors` file: u64 header length, JSON header, raw little-endian buffers."""
  with open(path, "rb") as f:
    blob = f.read()
  if len(blob) < 8:
    raise ValueError(f"{path}: too short for a safetensors file")
  (header_len,) = struct.unpack("<Q", blob[:8])
  if 8 + header_len > len(blob):
    raise ValueError(f"{path}: safetensors header length {header_len} exceeds the file")
  try:
    header = json.loads(blob[8:8 + header_len])
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise ValueError(f"{path}: safetensors header is not JSON ({e})") from None
  data = memoryview(blob)[8 + header_len:]
  out = {}
  for name, info in header.items():
    if name == "__metadata__":
      continue
    if info.get("dtype") not in _SAFETENSORS_DTYPES:
      raise ValueError(f"{path}: tensor {name} has unsupported dtype {info.get('dtype')}")
    dtype = np.dtype(_SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
    begin, end = info["data_offsets"]
    shape = tuple(info["shape"])
    if end - begin != int(np.prod(shape)) * dtype.itemsize or end > len(data):
      raise ValueError(f"{path}: tensor {name} of shape {shape} {info['dtype']} does not fit "
                       f"its data_offsets {info['data_offsets']}")
    out[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).copy()
  return out


def read_state_dict(path: str) -> dict[str, np.ndarray]:
  """Tensor name -> numpy array from a torch `.pth`/`.pt` or a `.safetensors` file.

  A checkpoint that wraps its weights as {"state_dict": ...} or {"model": ...} is unwrapped.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"weights file {path} does not exist")
  if zipfile.is_zipfile(path):
    state = _read_torch_zip(path)
  else:
    with open(path, "rb") as f:
      first = f.read(1)
    # A pickle starts with the PROTO opcode; a safetensors file with its header length.
    state = _read_torch_legacy(path) if first == b"\x80" else read_safetensors(path)
  if not isinstance(state, Mapping):
    raise ValueError(f"{path}: holds a {type(state).__name__}, not a state_dict")
  for wrapper in ("state_dict", "model"):
    if isinstance(state.get(wrapper), Mapping):
      state = state[wrapper]
      break
  return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}


def _torch_key(module_path: Sequence[str], leaf: str) -> str:
  """("layer1_0", "downsample_bn"), "mean" -> "layer1.0.downsample.1.running_mean"."""
  parts = []
  for name in module_path:
    if name == "downsample_conv":
      parts.append("downsample.0")
    elif name == "downsample_bn":
      parts.append("downsample.1")
    elif name.startswith("layer") and "_" in name:
      parts.append(name.replace("_", "."))
    else:
      parts.append(name)
  torch_leaf = {"kernel": "weight", "scale": "weight", "bias": "bias", "mean": "running_mean",
                "var": "running_var"}[leaf]
  return ".".join(parts + [torch_leaf])


def _to_flax(value: np.ndarray, leaf: str, ndim: int) -> np.ndarray:
  if leaf == "kernel" and ndim == 4:  # conv OIHW -> HWIO
    return value.transpose(2, 3, 1, 0)
  if leaf == "kernel" and ndim == 2:  # linear (out, in) -> (in, out)
    return value.T
  return value


def _map_tree(template: Mapping, state: Mapping[str, np.ndarray], path: str,
              prefix: tuple[str, ...], used: set[str]):
  out = {}
  for name, sub in template.items():
    if isinstance(sub, Mapping):
      out[name] = _map_tree(sub, state, path, prefix + (name,), used)
      continue
    key = _torch_key(prefix, name)
    if key not in state:
      raise KeyError(f"{path}: no tensor '{key}' for the model's {'/'.join(prefix + (name,))}")
    value = _to_flax(np.asarray(state[key]), name, len(sub.shape))
    if tuple(value.shape) != tuple(sub.shape):
      raise ValueError(f"{path}: tensor '{key}' has shape {tuple(state[key].shape)} (as flax "
                       f"{tuple(value.shape)}); the model's {'/'.join(prefix + (name,))} "
                       f"needs {tuple(sub.shape)}")
    used.add(key)
    out[name] = value.astype(sub.dtype)
  return out


def _subtree(tree: Mapping, scope: Sequence[str]):
  for name in scope:
    tree = tree[name]
  return tree


def _replace(tree: Mapping, scope: Sequence[str], new) -> dict:
  if not scope:
    return new
  out = dict(tree)
  out[scope[0]] = _replace(tree[scope[0]], scope[1:], new)
  return out


# config.model.pretrained's value for "random init, on purpose" where a config's published
# setting is ImageNet weights (config.model.pretrained_required).
SCRATCH = "none"


def weights_path(model_config) -> str:
  """config.model -> the ImageNet weights file to load, or "" for random init.

  "none" is random init on purpose. An unset path ("") is random init too, except where
  the config's published setting is ImageNet weights (model.pretrained_required): then
  it is an error that names the field, so a run cannot silently train from scratch.
  """
  path = model_config.pretrained
  if path == SCRATCH:
    return ""
  if not path and model_config.get("pretrained_required", False):
    raise ValueError(
        "config.model.pretrained: unset, but this config's published setting is ImageNet "
        "weights; pass --config.model.pretrained=/path/to/resnet50-0676ba61.pth "
        "(torchvision's ResNet-50, or a timm .safetensors), or "
        f"--config.model.pretrained={SCRATCH} to train from scratch on purpose")
  return path


def load_resnet(path: str, variables: Mapping, scope: Sequence[str] = ()) -> dict:
  """Returns `variables` with the ResNet at `scope` (e.g. ("backbone",)) replaced by the
  weights in `path`, a torchvision/timm ResNet state_dict (`.pth` or `.safetensors`).

  Every parameter and batch statistic of the model must be in the file with the right
  shape; the file may hold nothing else but `fc.*` (when the model has no classifier) and
  `num_batches_tracked` counters.
  """
  state = read_state_dict(path)
  used: set[str] = set()
  params = _map_tree(_subtree(variables["params"], scope), state, path, (), used)
  stats = _map_tree(_subtree(variables["batch_stats"], scope), state, path, (), used)
  unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked")
                  and not (k.startswith("fc.") and "fc" not in params))
  if unused:
    raise ValueError(f"{path}: {len(unused)} tensors match nothing in the model "
                     f"(a different architecture?): {unused[:5]}")
  out = dict(variables)
  out["params"] = _replace(variables["params"], scope, params)
  out["batch_stats"] = _replace(variables["batch_stats"], scope, stats)
  return out
