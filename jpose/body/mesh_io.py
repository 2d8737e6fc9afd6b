"""Reads triangle meshes from PLY files (ascii and binary), e.g. the SMPL template.

Only vertex positions and triangle indices are returned; other per-vertex or per-face
properties (colours, texture coordinates) are parsed past and dropped.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jpose import file_errors

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


class MeshFileError(file_errors.SourceFileError):
  """A mesh file is missing, truncated or not in a layout this reader understands."""


@dataclasses.dataclass
class _Property:
  name: str
  dtype: str  # numpy type code of the value (or of the list items).
  count_dtype: str | None = None  # numpy type code of a list's length prefix.


@dataclasses.dataclass
class _Element:
  name: str
  count: int
  properties: list[_Property]


def read_ply(path: str) -> tuple[np.ndarray, np.ndarray]:
  """A PLY file -> vertices (V, 3) float32 and triangles (F, 3) int32."""
  if not os.path.exists(path):
    raise MeshFileError(path, "file not found")
  with open(path, "rb") as f:
    data = f.read()
  fmt, elements, body_start = _parse_header(path, data)
  if fmt == "ascii":
    values = _read_ascii(path, data[body_start:], elements)
  else:
    values = _read_binary(path, data, body_start, elements, "<" if fmt.endswith("little_endian")
                          else ">")
  if "vertex" not in values:
    raise MeshFileError(path, "has no 'vertex' element")
  vertex = values["vertex"]
  missing = [c for c in "xyz" if c not in vertex]
  if missing:
    raise MeshFileError(path, f"vertex element lacks properties {missing}")
  vertices = np.stack([vertex[c] for c in "xyz"], axis=-1).astype(np.float32)
  faces = values.get("face", {}).get("vertex_indices", values.get("face", {}).get("vertex_index"))
  if faces is None:
    raise MeshFileError(path, "has no 'face' element with a 'vertex_indices' list")
  if faces.ndim != 2 or faces.shape[1] != 3:
    raise MeshFileError(path, "faces are not all triangles")
  faces = faces.astype(np.int32)
  if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
    raise MeshFileError(path, f"face indices fall outside [0, {vertices.shape[0]})")
  return vertices, faces


def _parse_header(path: str, data: bytes) -> tuple[str, list[_Element], int]:
  end = data.find(b"end_header")
  if not data.startswith(b"ply") or end < 0:
    raise MeshFileError(path, "not a PLY file (no 'ply' magic or no 'end_header')")
  body_start = data.index(b"\n", end) + 1
  lines = data[:end].decode("ascii", errors="replace").splitlines()
  fmt, elements = None, []
  for line in lines[1:]:
    words = line.split()
    if not words or words[0] in ("comment", "obj_info"):
      continue
    try:
      if words[0] == "format":
        fmt = words[1]
      elif words[0] == "element":
        elements.append(_Element(words[1], int(words[2]), []))
      elif words[0] == "property" and words[1] == "list":
        elements[-1].properties.append(
            _Property(words[4], _PLY_TYPES[words[3]], _PLY_TYPES[words[2]]))
      elif words[0] == "property":
        elements[-1].properties.append(_Property(words[2], _PLY_TYPES[words[1]]))
    except (IndexError, KeyError, ValueError) as e:
      raise MeshFileError(path, f"malformed header line '{line}'") from e
  if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
    raise MeshFileError(path, f"unknown PLY format '{fmt}'")
  return fmt, elements, body_start


def _read_binary(path: str, data: bytes, offset: int, elements: list[_Element],
                 order: str) -> dict[str, dict[str, np.ndarray]]:
  values = {}
  for element in elements:
    try:
      fields, offset = _read_binary_element(data, offset, element, order)
    except (ValueError, IndexError) as e:
      raise MeshFileError(path, f"element '{element.name}' is truncated or malformed "
                          f"({e})") from e
    values[element.name] = fields
  return values


def _read_binary_element(data: bytes, offset: int, element: _Element, order: str):
  """One element's records, vectorised when every list has the first record's length.

  Meshes almost always store fixed-length lists (triangles, 6 texture coordinates), so
  the records form one structured array; otherwise records are read one at a time.
  """
  layout, pos = [], offset
  for prop in element.properties:
    if prop.count_dtype is None:
      layout.append((prop.name, order + prop.dtype))
      pos += np.dtype(prop.dtype).itemsize
    else:
      n = int(np.frombuffer(data, order + prop.count_dtype, 1, pos)[0]) if element.count else 0
      pos += np.dtype(prop.count_dtype).itemsize + n * np.dtype(prop.dtype).itemsize
      layout.append((prop.name + "#count", order + prop.count_dtype))
      layout.append((prop.name, order + prop.dtype, (n,)))
  record = np.dtype(layout)
  if offset + record.itemsize * element.count <= len(data):
    table = np.frombuffer(data, record, element.count, offset)
    counts_ok = all(np.all(table[p.name + "#count"] == table.dtype[p.name].shape[0])
                    for p in element.properties if p.count_dtype is not None)
    if counts_ok:
      fields = {p.name: np.array(table[p.name]) for p in element.properties}
      return fields, offset + record.itemsize * element.count
  fields = {p.name: [] for p in element.properties}
  for _ in range(element.count):
    for prop in element.properties:
      if prop.count_dtype is None:
        fields[prop.name].append(np.frombuffer(data, order + prop.dtype, 1, offset)[0])
        offset += np.dtype(prop.dtype).itemsize
      else:
        n = int(np.frombuffer(data, order + prop.count_dtype, 1, offset)[0])
        offset += np.dtype(prop.count_dtype).itemsize
        fields[prop.name].append(np.frombuffer(data, order + prop.dtype, n, offset))
        offset += n * np.dtype(prop.dtype).itemsize
  return {k: _stack(v) for k, v in fields.items()}, offset


def _read_ascii(path: str, body: bytes, elements: list[_Element]):
  tokens = body.split()
  pos, values = 0, {}
  for element in elements:
    fields = {p.name: [] for p in element.properties}
    try:
      for _ in range(element.count):
        for prop in element.properties:
          if prop.count_dtype is None:
            fields[prop.name].append(float(tokens[pos]))
            pos += 1
          else:
            n = int(tokens[pos])
            fields[prop.name].append(np.array([float(t) for t in tokens[pos + 1:pos + 1 + n]]))
            pos += 1 + n
    except (IndexError, ValueError) as e:
      raise MeshFileError(path, f"element '{element.name}' is truncated or malformed") from e
    values[element.name] = {k: _stack(v) for k, v in fields.items()}
  return values


def _stack(items: list) -> np.ndarray:
  """Stacks records; a ragged list (polygons of mixed size) stays an object array."""
  if items and isinstance(items[0], np.ndarray):
    if len({len(i) for i in items}) > 1:
      return np.array(items, dtype=object)
    return np.stack(items)
  return np.asarray(items)
