"""Torch-free writers of the checkpoint formats `jpose.formats.pretrained` reads, for tests:
torch's zip `.pth` (written opcode by opcode from the format, pickle protocol 2) and
`.safetensors`; and torchvision's ResNet state_dict key/shape layout."""

from __future__ import annotations

import json
import pickle
import struct
import zipfile

import numpy as np

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage",
                  np.dtype(np.float16): "HalfStorage"}
_SAFETENSORS_NAMES = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64",
                      np.dtype(np.float16): "F16"}


def torchvision_resnet_shapes(depth: int, num_classes: int = 1000) -> dict[str, tuple]:
  """torchvision.models.resnet{depth}().state_dict()'s keys and shapes (18 or 50)."""
  shapes: dict[str, tuple] = {"conv1.weight": (64, 3, 7, 7)}

  def bn(name, n):
    shapes.update({f"{name}.weight": (n,), f"{name}.bias": (n,), f"{name}.running_mean": (n,),
                   f"{name}.running_var": (n,), f"{name}.num_batches_tracked": ()})

  bn("bn1", 64)
  bottleneck = depth == 50
  blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
  fan_in = 64
  for stage, (count, width) in enumerate(zip(blocks, (64, 128, 256, 512)), start=1):
    out = width * 4 if bottleneck else width
    for b in range(count):
      p = f"layer{stage}.{b}"
      if bottleneck:
        convs = [(width, fan_in, 1), (width, width, 3), (out, width, 1)]
      else:
        convs = [(width, fan_in, 3), (width, width, 3)]
      for i, (o, c, k) in enumerate(convs, start=1):
        shapes[f"{p}.conv{i}.weight"] = (o, c, k, k)
        bn(f"{p}.bn{i}", o)
      if b == 0 and (stage > 1 or fan_in != out):
        shapes[f"{p}.downsample.0.weight"] = (out, fan_in, 1, 1)
        bn(f"{p}.downsample.1", out)
      fan_in = out
  shapes["fc.weight"] = (num_classes, fan_in)
  shapes["fc.bias"] = (num_classes,)
  return shapes


def random_state_dict(shapes: dict[str, tuple], seed: int = 0) -> dict[str, np.ndarray]:
  rng = np.random.default_rng(seed)
  out = {}
  for key, shape in shapes.items():
    if key.endswith("num_batches_tracked"):
      out[key] = np.asarray(7, np.int64)
    elif key.endswith("running_var"):
      out[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    else:
      out[key] = rng.normal(0, 0.1, shape).astype(np.float32)
  return out


def _unicode(s: str) -> bytes:
  data = s.encode("utf-8")
  return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _int(i: int) -> bytes:
  return pickle.BININT + struct.pack("<i", i)


def _global(module: str, name: str) -> bytes:
  return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _int_tuple(values) -> bytes:
  return pickle.MARK + b"".join(_int(v) for v in values) + pickle.TUPLE


def _ordered_dict() -> bytes:
  return _global("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE


def state_dict_pickle(state: dict[str, np.ndarray]) -> bytes:
  """What torch.save pickles for a state_dict: an OrderedDict of
  _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks), each storage a
  persistent id ('storage', <type>, key, location, numel); storage i holds tensor i."""
  body = [pickle.PROTO + b"\x02", _ordered_dict(), pickle.MARK]
  for i, (key, value) in enumerate(state.items()):
    strides = [int(np.prod(value.shape[d + 1:])) for d in range(value.ndim)]
    pid = (pickle.MARK + _unicode("storage") + _global("torch", _STORAGE_NAMES[value.dtype])
           + _unicode(str(i)) + _unicode("cpu") + _int(value.size) + pickle.TUPLE)
    body += [_unicode(key), _global("torch._utils", "_rebuild_tensor_v2"), pickle.MARK,
             pid, pickle.BINPERSID, _int(0), _int_tuple(value.shape), _int_tuple(strides),
             pickle.NEWFALSE, _ordered_dict(), pickle.TUPLE, pickle.REDUCE]
  body += [pickle.SETITEMS, pickle.STOP]
  return b"".join(body)


def write_torch_zip(path, state: dict[str, np.ndarray], pickle_bytes: bytes | None = None):
  """A torch >= 1.6 `.pth`: an uncompressed zip of archive/data.pkl, archive/data/<key>
  (raw little-endian storage bytes), archive/byteorder and archive/version."""
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
    archive.writestr("archive/data.pkl", pickle_bytes or state_dict_pickle(state))
    archive.writestr("archive/byteorder", "little")
    for i, value in enumerate(state.values()):
      archive.writestr(f"archive/data/{i}", np.ascontiguousarray(value).astype(
          value.dtype.newbyteorder("<")).tobytes())
    archive.writestr("archive/version", "3\n")


def write_safetensors(path, state: dict[str, np.ndarray]):
  """u64 little-endian header length, the JSON header, then the tensors' bytes."""
  header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
  for key, value in state.items():
    data = np.ascontiguousarray(value).tobytes()
    header[key] = {"dtype": _SAFETENSORS_NAMES[value.dtype], "shape": list(value.shape),
                   "data_offsets": [offset, offset + len(data)]}
    chunks.append(data)
    offset += len(data)
  text = json.dumps(header).encode()
  text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes
  with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))
