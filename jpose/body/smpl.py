"""Loads SMPL model files (official `.pkl` and the smplx package's `.npz`) as a `BodyModel`.

The official pickles (v1.0 `basicModel_*.pkl`, v1.1 `SMPL_*.pkl`, HMR's neutral model)
were written by Python 2 with chumpy arrays and a scipy sparse `J_regressor`. They are
read here without chumpy or scipy: a restricted unpickler maps every chumpy class and
every scipy sparse matrix to stand-ins that keep the pickled state, and refuses any
other class (a model file cannot run code). A chumpy `Ch` pickles its `__dict__` minus
its caches; the array is under key 'x' (chumpy/ch.py, `Ch.__getstate__`).

SMPL's frame: metres, y up, the body faces +z, +x is the body's left.

Joint regressors (see `approximate_h36m_regressor` for the fallback):
  h36m: a (17, V) `.npy` such as SPIN's `J_regressor_h36m.npy`, rows in the order of the
    17-joint subset of Human3.6M's 32 mocap joints (`skeleton.H36M_17`).
  lsp: a (14, V) `.npy` in `skeleton.LSP_14` order, or the first 14 rows of HMR's
    'cocoplus_regressor' when the model pickle holds one.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import jax.numpy as jnp
import numpy as np

from jpose import file_errors
from jpose.body import lbs
from jpose.body import model as body_model

NUM_JOINTS = 24
# SMPL's kinematic tree: parent of each of the 24 joints.
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)

# BodyModel fields under their SMPL file names, for error messages.
_FILE_FIELDS = {"j_regressor": "J_regressor", "faces": "f", "parents": "kintree_table"}
_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
             "f")
_OPTIONAL = ("cocoplus_regressor",)


class SmplFileError(body_model.BodyModelError):
  """An SMPL file (or regressor file) is missing, unreadable or has a malformed field."""


def load(path: str, *, h36m_regressor_path: str | None = None,
         lsp_regressor_path: str | None = None, num_betas: int | None = 10,
         name: str = "smpl") -> body_model.BodyModel:
  """Reads an SMPL `.pkl` or `.npz` into a float32 `BodyModel`.

  Args:
    path: the model file.
    h36m_regressor_path: optional (17, V) `.npy`; without it the H36M joints come from
      `approximate_h36m_regressor`.
    lsp_regressor_path: optional (14, V) `.npy`; without it, the pickle's
      'cocoplus_regressor' (HMR) or else `approximate_lsp_regressor`.
    num_betas: keep the first `num_betas` shape directions (v1.1 ships 300; SMPLify and
      HMR use 10); None keeps all.
  """
  fields = read_fields(path)
  return from_fields(fields, path, h36m_regressor=_read_regressor(h36m_regressor_path, 17),
                     lsp_regressor=_read_regressor(lsp_regressor_path, 14),
                     num_betas=num_betas, name=name)


def read_fields(path: str) -> dict[str, np.ndarray]:
  """The raw arrays of an SMPL `.pkl` or `.npz`, keyed by SMPL's field names."""
  file_errors.require_file(path, SmplFileError)
  if path.endswith(".npz"):
    # Only the fields a BodyModel uses: smplx archives may hold pickled extras
    # (e.g. a sparse 'J_regressor_prior') that allow_pickle=False cannot read.
    return file_errors.read_npz(path, SmplFileError, _REQUIRED + _OPTIONAL)[0]
  if path.endswith(".pkl"):
    return _read_pkl(path)
  raise SmplFileError(path, "unknown extension: expected an SMPL '.pkl' or '.npz'")


def from_fields(fields: dict, source: str, *, h36m_regressor=None, lsp_regressor=None,
                num_betas: int | None = 10, name: str = "smpl") -> body_model.BodyModel:
  """Builds and checks a `BodyModel` from SMPL-named arrays (see `read_fields`)."""
  missing = [k for k in _REQUIRED if k not in fields]
  if missing:
    raise SmplFileError(source, f"missing field(s) {missing}")
  arrays = {k: _dense(fields[k], k, source) for k in _REQUIRED}
  v_template = _float(arrays["v_template"], "v_template", source, ndim=2)
  shapedirs = _float(arrays["shapedirs"], "shapedirs", source, ndim=3)
  if num_betas is not None:
    shapedirs = shapedirs[..., :num_betas]
  posedirs = _float(arrays["posedirs"], "posedirs", source, ndim=3)
  parents = parents_from_kintree(arrays["kintree_table"], source)
  j_regressor = _float(arrays["J_regressor"], "J_regressor", source, ndim=2)
  faces = np.asarray(arrays["f"])
  if faces.dtype.kind not in "iu":
    raise SmplFileError(source, f"field 'f' has dtype {faces.dtype}, expected integers")
  if h36m_regressor is None:
    h36m_regressor = approximate_h36m_regressor(j_regressor, v_template)
  if lsp_regressor is None and "cocoplus_regressor" in fields:
    cocoplus = _float(_dense(fields["cocoplus_regressor"], "cocoplus_regressor", source),
                      "cocoplus_regressor", source, ndim=2)
    if cocoplus.shape[0] < 14:
      raise SmplFileError(source, f"field 'cocoplus_regressor' has shape {cocoplus.shape}, "
                          "expected at least 14 rows (the LSP joints come first)")
    lsp_regressor = cocoplus[:14]
  if lsp_regressor is None:
    lsp_regressor = approximate_lsp_regressor(j_regressor, v_template)
  model = body_model.BodyModel(
      v_template=jnp.asarray(v_template), shapedirs=jnp.asarray(shapedirs),
      posedirs=jnp.asarray(posedirs), j_regressor=jnp.asarray(j_regressor),
      weights=jnp.asarray(_float(arrays["weights"], "weights", source, ndim=2)),
      faces=jnp.asarray(faces.astype(np.int32)),
      h36m_regressor=jnp.asarray(np.asarray(h36m_regressor, np.float32)),
      lsp_regressor=jnp.asarray(np.asarray(lsp_regressor, np.float32)),
      parents=parents, name=name)
  return body_model.check(model, source, _FILE_FIELDS)


def parents_from_kintree(kintree_table, source: str = "") -> tuple[int, ...]:
  """SMPL's (2, K) kintree_table (row 0 parent ids, row 1 joint ids) -> parents tuple.

  The root's parent is stored as -1 or as 2^32 - 1 (an unsigned -1 in older files).
  """
  table = np.asarray(kintree_table).astype(np.int64)
  if table.ndim != 2 or table.shape[0] != 2:
    raise SmplFileError(source, f"field 'kintree_table' has shape {table.shape}, "
                        "expected (2, K)")
  column_of = {int(j): i for i, j in enumerate(table[1])}
  parents = [-1]
  for i in range(1, table.shape[1]):
    parent = column_of.get(int(table[0, i]))
    if parent is None:
      raise SmplFileError(source, f"field 'kintree_table': joint {i}'s parent id "
                          f"{int(table[0, i])} is not a joint id")
    parents.append(parent)
  return tuple(parents)


# Which SMPL joints stand in for each H36M-17 / LSP-14 joint when no regressor file is
# given: (weights over SMPL joints) or a named vertex set. Hip (H36M's root) is the hip
# midpoint exactly, as in the H36M mocap (measured: 0.0 mm on S1 Walking); Spine is
# halfway between the root and the thorax (H36M's own spine sits 15-38 mm from that
# midpoint on S1 Walking); Thorax and LSP's Neck are SMPL's neck joint; H36M's
# Neck/Nose is the nose tip vertex set and Head / HeadTop the top-of-head vertex set.
_HIP_MID = {1: 0.5, 2: 0.5}
_H36M_FROM_SMPL = (
    _HIP_MID, {2: 1.0}, {5: 1.0}, {8: 1.0}, {1: 1.0}, {4: 1.0}, {7: 1.0},
    {1: 0.25, 2: 0.25, 12: 0.5}, {12: 1.0}, "nose", "head_top",
    {16: 1.0}, {18: 1.0}, {20: 1.0}, {17: 1.0}, {19: 1.0}, {21: 1.0},
)
_LSP_FROM_SMPL = (
    {8: 1.0}, {5: 1.0}, {2: 1.0}, {1: 1.0}, {4: 1.0}, {7: 1.0}, {21: 1.0}, {19: 1.0},
    {17: 1.0}, {16: 1.0}, {18: 1.0}, {20: 1.0}, {12: 1.0}, "head_top",
)
# Vertex sets picked by geometry on the rest template (metres, SMPL's frame):
# head top: every vertex within this height of the highest vertex (a skull cap);
_HEAD_TOP_DEPTH = 0.02
# nose: among vertices in the top 20 cm with |x| < 5 cm (the face, never the T-posed
# hands), those within this distance of the most forward (+z) one.
_NOSE_DEPTH = 0.005


def head_vertices(v_template) -> dict[str, np.ndarray]:
  """Vertex ids of the top of the head and of the nose tip, found on the rest template."""
  v = np.asarray(v_template)
  top = v[:, 1].max()
  head_top = np.flatnonzero(v[:, 1] > top - _HEAD_TOP_DEPTH)
  face = np.flatnonzero((v[:, 1] > top - 0.2) & (np.abs(v[:, 0]) < 0.05))
  if face.size == 0:
    raise ValueError("no template vertices in the face region (is the template y-up, in m?)")
  front = v[face, 2].max()
  nose = face[v[face, 2] > front - _NOSE_DEPTH]
  return {"head_top": head_top, "nose": nose}


def _mixed_regressor(table, j_regressor, v_template) -> np.ndarray:
  j_regressor = np.asarray(j_regressor, np.float64)
  if j_regressor.shape[0] != NUM_JOINTS:
    raise ValueError(f"approximate regressors need SMPL's 24 joints, got "
                     f"{j_regressor.shape[0]}")
  sets = head_vertices(v_template)
  rows = []
  for entry in table:
    if isinstance(entry, str):
      row = np.zeros(j_regressor.shape[1])
      row[sets[entry]] = 1.0 / sets[entry].size
    else:
      row = sum(w * j_regressor[k] for k, w in entry.items())
    rows.append(row)
  return np.stack(rows).astype(np.float32)


def approximate_h36m_regressor(j_regressor, v_template) -> np.ndarray:
  """(17, V) H36M-17 regressor mixed from SMPL's 24 joint rows and two vertex sets."""
  return _mixed_regressor(_H36M_FROM_SMPL, j_regressor, v_template)


def approximate_lsp_regressor(j_regressor, v_template) -> np.ndarray:
  """(14, V) LSP-14 regressor mixed from SMPL's 24 joint rows and the head-top set."""
  return _mixed_regressor(_LSP_FROM_SMPL, j_regressor, v_template)


MEAN_PARAMS = os.path.join("mmpose_fixtures", "smpl", "smpl_mean_params.npz")  # under $JPOSE_DATA_DIR.


def load_mean_params(path: str) -> np.ndarray:
  """HMR's starting point: SMPL mean parameters -> (85,) float32 Theta = [camera (3),
  pose (72) axis-angle, shape (10)].

  Reads SPIN / mmpose's `smpl_mean_params.npz` (`pose` (144,) as 24 6D rotations,
  `shape` (10,), `cam` (3,)) or a file holding `pose` (72,) axis-angles (HMR's means);
  without `cam`, HMR's mean camera (0.9, 0, 0)."""
  if not os.path.exists(path):
    raise SmplFileError(path, "mean parameter file not found")
  try:
    with np.load(path, allow_pickle=False) as data:
      fields = {k: np.asarray(data[k], np.float64) for k in data.files}
  except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
    raise SmplFileError(path, f"not a readable .npz archive: {e}") from e
  for key in ("pose", "shape"):
    if key not in fields:
      raise SmplFileError(path, f"no field '{key}' (fields: {sorted(fields)})")
  pose, shape = fields["pose"].reshape(-1), fields["shape"].reshape(-1)
  camera = fields.get("cam", np.array([0.9, 0.0, 0.0])).reshape(-1)
  for key, value, sizes in (("pose", pose, (144, 72)), ("shape", shape, (10,)),
                            ("cam", camera, (3,))):
    if value.size not in sizes:
      raise SmplFileError(path, f"field '{key}' has {value.size} values, expected "
                          + " or ".join(map(str, sizes)))
    if not np.all(np.isfinite(value)):
      raise SmplFileError(path, f"field '{key}' contains NaN or infinite values")
  if pose.size == 144:
    pose = np.asarray(lbs.axis_angle_from_matrix(lbs.rotation_from_6d(
        jnp.asarray(pose.reshape(NUM_JOINTS, 6), jnp.float32)))).reshape(-1)
  return np.concatenate([camera, pose, shape]).astype(np.float32)


def _read_regressor(path: str | None, rows: int) -> np.ndarray | None:
  if path is None:
    return None
  if not os.path.exists(path):
    raise SmplFileError(path, "regressor file not found")
  try:
    value = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise SmplFileError(path, f"not a readable .npy regressor: {e}") from e
  if isinstance(value, np.lib.npyio.NpzFile):
    raise SmplFileError(path, "expected a .npy array, got an .npz archive")
  if value.ndim != 2 or value.shape[0] != rows or not np.all(np.isfinite(value)):
    raise SmplFileError(path, f"regressor has shape {value.shape}, expected finite "
                        f"({rows}, V)")
  return value.astype(np.float32)


class _PickledObject:
  """Stand-in for a chumpy or scipy.sparse object: keeps the pickled constructor
  arguments and state. Subclassed per (module, name) by `_ModelUnpickler`."""

  module = ""
  name = ""
  args: tuple = ()
  state: dict = {}  # replaced per instance; copyreg._reconstructor skips __new__.

  def __new__(cls, *args, **kwargs):
    instance = super().__new__(cls)
    instance.args, instance.state = args, {}
    return instance

  def __setstate__(self, state):
    # Objects with __slots__ pickle (dict, slots); chumpy and scipy use plain dicts.
    if isinstance(state, tuple) and len(state) == 2:
      state = {**(state[0] or {}), **(state[1] or {})}
    self.state = state

  def __reduce__(self):
    raise pickle.PicklingError(f"stand-in for {self.module}.{self.name} is read-only")


_ALLOWED_GLOBALS = {
    ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("copyreg", "__newobj__"), ("__builtin__", "object"), ("builtins", "object"),
    ("__builtin__", "set"), ("builtins", "set"), ("builtins", "frozenset"),
    ("__builtin__", "frozenset"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _ModelUnpickler(pickle.Unpickler):
  """Unpickles SMPL files: chumpy and scipy.sparse become `_PickledObject`s; numpy and
  a few builtins load normally; anything else is refused."""

  def __init__(self, file, path: str):
    super().__init__(file, encoding="latin1")
    self._path = path
    self._stand_ins: dict[tuple[str, str], type] = {}

  def find_class(self, module: str, name: str):
    if module.split(".")[0] == "chumpy" or module.startswith("scipy.sparse"):
      key = (module, name)
      if key not in self._stand_ins:
        self._stand_ins[key] = type(name, (_PickledObject,), {"module": module, "name": name})
      return self._stand_ins[key]
    if (module, name) not in _ALLOWED_GLOBALS:
      raise pickle.UnpicklingError(f"{self._path}: refuses to load '{module}.{name}' (not "
                                   "an array type an SMPL file holds)")
    if module.startswith("numpy.core"):  # numpy 2 renamed numpy.core to numpy._core.
      module = "numpy._core" + module[len("numpy.core"):]
    return super().find_class(module, name)


def _read_pkl(path: str) -> dict:
  with open(path, "rb") as f:
    data = f.read()
  try:
    fields = _ModelUnpickler(io.BytesIO(data), path).load()
  except pickle.UnpicklingError as e:
    raise SmplFileError(path, f"cannot unpickle: {e}") from e
  except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
    raise SmplFileError(path, f"not a readable SMPL pickle (truncated or corrupt?): "
                        f"{type(e).__name__}: {e}") from e
  if not isinstance(fields, dict):
    raise SmplFileError(path, f"holds a {type(fields).__name__}, expected a dict of fields")
  return fields


def _dense(value, field: str, source: str) -> np.ndarray:
  """A field as a dense numpy array: chumpy `Ch` -> its 'x', sparse -> dense."""
  if isinstance(value, _PickledObject):
    if value.module.startswith("scipy.sparse"):
      return _sparse_to_dense(value, field, source)
    if "x" in value.state:
      return _dense(value.state["x"], field, source)
    raise SmplFileError(source, f"field '{field}' is a chumpy expression "
                        f"({value.module}.{value.name}) with no stored value 'x'")
  if isinstance(value, np.ndarray) and value.dtype == object:
    raise SmplFileError(source, f"field '{field}' is an object array, expected numbers")
  try:
    return np.asarray(value)
  except (TypeError, ValueError) as e:
    raise SmplFileError(source, f"field '{field}' is not an array: {e}") from e


def _sparse_to_dense(value: _PickledObject, field: str, source: str) -> np.ndarray:
  """Rebuilds a pickled scipy csc/csr/coo matrix from its arrays, without scipy."""
  s = value.state
  try:
    shape = tuple(int(n) for n in s.get("_shape", s.get("shape")))
    kind = value.name[:3]
    dense = np.zeros(shape, np.float64)
    data = np.asarray(s["data"], np.float64)
    if kind in ("csc", "csr"):
      indices, indptr = np.asarray(s["indices"]), np.asarray(s["indptr"])
      major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
      rows, cols = (indices, major) if kind == "csc" else (major, indices)
    elif kind == "coo":
      rows, cols = np.asarray(s["row"]), np.asarray(s["col"])
    else:
      raise SmplFileError(source, f"field '{field}' is a sparse '{value.name}', expected "
                          "csc, csr or coo")
    np.add.at(dense, (rows, cols), data)
  except (KeyError, TypeError, ValueError, IndexError) as e:
    raise SmplFileError(source, f"field '{field}': malformed sparse matrix "
                        f"({type(e).__name__}: {e})") from e
  return dense


def _float(value: np.ndarray, field: str, source: str, ndim: int) -> np.ndarray:
  value = np.asarray(value)
  if value.dtype.kind not in "fiu" or value.ndim != ndim:
    raise SmplFileError(source, f"field '{field}' has shape {value.shape} and dtype "
                        f"{value.dtype}, expected a {ndim}-d numeric array")
  if not np.all(np.isfinite(value)):
    raise SmplFileError(source, f"field '{field}' contains NaN or infinite values")
  return value.astype(np.float32)
