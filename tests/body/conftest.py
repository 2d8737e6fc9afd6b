"""An SMPL-format model for the body tests, built on the real SMPL template topology.

No SMPL model file can be shipped, so the tests make one: the real template mesh
($JPOSE_DATA_DIR/smpl_topology/template.ply), SMPL's kinematic tree, joints placed where
SMPL's are on the T-posed template, skinning weights that fall off with the distance to
each joint's bones, linear shape directions (height, width, ...) and small random pose
blend shapes. It is written in both layouts a user meets: the official chumpy pickle
(written with stand-in classes registered as `chumpy.ch.Ch` and
`scipy.sparse.csc.csc_matrix`, so the file references them exactly as the real one does,
yet neither chumpy nor old scipy is needed) and the smplx package's `.npz`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest

from jpose.body import mesh_io
from jpose.body import smpl

# SMPL's kinematic tree, written out here rather than imported, so the loader's copy is
# checked against it.
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                20, 21)

# The 24 SMPL rest joints on a T-posed neutral body whose soles are at y = -1.21 m (read
# off the template by eye; a plot of them over template.ply lands each inside its limb).
_REST_JOINTS = np.array([
    (0.0, -0.22, 0.03), (0.06, -0.31, 0.02), (-0.06, -0.31, 0.02), (0.0, -0.11, 0.0),
    (0.10, -0.69, 0.02), (-0.10, -0.69, 0.02), (0.0, 0.03, 0.03), (0.09, -1.09, -0.02),
    (-0.09, -1.09, -0.02), (0.0, 0.09, 0.03), (0.12, -1.15, 0.10), (-0.12, -1.15, 0.10),
    (0.0, 0.29, 0.0), (0.08, 0.19, 0.0), (-0.08, 0.19, 0.0), (0.0, 0.36, 0.05),
    (0.19, 0.23, -0.01), (-0.19, 0.23, -0.01), (0.45, 0.22, -0.03), (-0.45, 0.22, -0.03),
    (0.71, 0.23, -0.03), (-0.71, 0.23, -0.03), (0.79, 0.22, -0.04), (-0.79, 0.22, -0.04),
])
_SOLE_HEIGHT = -1.21


def _segment_distance(points, a, b):
  """Distance of (V, 3) points to the segment a-b."""
  ab = b - a
  t = np.clip(((points - a) @ ab) / max(ab @ ab, 1e-12), 0.0, 1.0)
  return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def build_smpl_fields(template_path: str, num_betas: int = 10, seed: int = 0) -> dict:
  """SMPL-named float64 arrays (J_regressor dense) for a fake but human-shaped SMPL."""
  rng = np.random.default_rng(seed)
  v, faces = mesh_io.read_ply(template_path)
  v = v.astype(np.float64)
  num_v, num_k = v.shape[0], len(SMPL_PARENTS)
  targets = _REST_JOINTS + np.array([0.0, v[:, 1].min() - _SOLE_HEIGHT, 0.0])

  # Each joint: the mean of the vertices around it (a ring around a limb), so the
  # regressed joint sits inside the body like SMPL's.
  j_regressor = np.zeros((num_k, num_v))
  for k, target in enumerate(targets):
    d = np.linalg.norm(v - target, axis=1)
    ring = np.flatnonzero(d < np.sort(d)[7] + 0.02)
    j_regressor[k, ring] = 1.0 / ring.size

  # Weights: a vertex follows the joints whose bones (joint -> child) pass nearest.
  joints = j_regressor @ v
  distance = np.empty((num_v, num_k))
  for k in range(num_k):
    children = [c for c, p in enumerate(SMPL_PARENTS) if p == k]
    ends = [joints[c] for c in children] or [joints[k]]
    distance[:, k] = np.min([_segment_distance(v, joints[k], e) for e in ends], axis=0)
  logits = -((distance - distance.min(axis=1, keepdims=True)) / 0.02)**2
  keep = np.argsort(-logits, axis=1)[:, :4]
  weights = np.zeros_like(distance)
  np.put_along_axis(weights, keep, np.exp(np.take_along_axis(logits, keep, axis=1)), axis=1)
  weights /= weights.sum(axis=1, keepdims=True)

  # Shape: height, width and depth scalings about the pelvis, then smooth random fields.
  centred = v - joints[0]
  shapedirs = np.zeros((num_v, 3, num_betas))
  for b, axis in enumerate((1, 0, 2)[:num_betas]):
    shapedirs[:, axis, b] = 0.04 * centred[:, axis]
  for b in range(3, num_betas):
    mix = rng.normal(size=(3, 3)) * 0.02
    frequency = rng.normal(size=3) * 3.0
    shapedirs[:, :, b] = centred @ mix.T * np.sin(centred @ frequency)[:, None]
  posedirs = rng.normal(size=(num_v, 3, 9 * (num_k - 1))) * 2e-3

  kintree = np.array([[2**32 - 1] + list(SMPL_PARENTS[1:]), list(range(num_k))], np.int64)
  return {
      "v_template": v, "shapedirs": shapedirs, "posedirs": posedirs,
      "J_regressor": j_regressor, "weights": weights, "kintree_table": kintree,
      "f": faces.astype(np.uint32), "J": joints, "bs_type": "lrotmin", "bs_style": "lbs",
  }


@contextlib.contextmanager
def _stand_in_modules(modules: dict[str, types.ModuleType]):
  """Registers fake modules while pickling (pickle checks a class by importing its
  module), and removes them afterwards so nothing later can use them."""
  saved = {name: sys.modules.get(name) for name in modules}
  sys.modules.update(modules)
  try:
    yield
  finally:
    for name, old in saved.items():
      if old is None:
        sys.modules.pop(name, None)
      else:
        sys.modules[name] = old


def _ch_class():
  """A class pickled exactly like chumpy's Ch: NEWOBJ of chumpy.ch.Ch, then its
  __dict__ minus the caches (chumpy/ch.py `Ch.__getstate__`) with the array under 'x'."""
  def getstate(self):
    return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {},
            "_make_dense": False, "_make_sparse": False}
  def init(self, x):
    self.x = x
  return type("Ch", (), {"__module__": "chumpy.ch", "__init__": init,
                         "__getstate__": getstate})


def _legacy_csc_class():
  """scipy < 1.8's csc_matrix as a Python 2 pickle holds it: its instance __dict__."""
  def init(self, dense):
    cols = [np.flatnonzero(dense[:, j]) for j in range(dense.shape[1])]
    self.__dict__.update(
        _shape=dense.shape, maxprint=50, format="csc", _has_sorted_indices=True,
        indices=np.concatenate(cols).astype(np.int32),
        indptr=np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32),
        data=np.concatenate([dense[c, j] for j, c in enumerate(cols)]))
  return type("csc_matrix", (), {"__module__": "scipy.sparse.csc", "__init__": init})


class _Python2Pickler(pickle._Pickler):  # the pure-Python pickler lets opcodes be chosen.
  """Writes what Python 2's pickle wrote: every str and bytes as a byte string
  (SHORT_BINSTRING / BINSTRING, which Python 3 reads back through `encoding`), and
  numpy's functions under their Python 2 era module `numpy.core`."""

  dispatch = dict(pickle._Pickler.dispatch)

  def save_byte_string(self, obj):
    data = obj.encode("latin1") if isinstance(obj, str) else obj
    if len(data) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
    else:
      self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
    self.memoize(obj)

  dispatch[str] = save_byte_string
  dispatch[bytes] = save_byte_string

  def save_global(self, obj, name=None):
    module = getattr(obj, "__module__", "")
    if module.startswith("numpy._core"):
      name = name or obj.__qualname__
      self.write(pickle.GLOBAL + f"numpy.core{module[len('numpy._core'):]}\n{name}\n".encode())
      self.memoize(obj)
    else:
      super().save_global(obj, name)

  dispatch[type] = save_global


def write_chumpy_pkl(fields: dict, path: str, sparse: str = "legacy") -> str:
  """Writes `fields` as an official SMPL pickle: Python 2 byte strings, protocol 2 (the
  highest Python 2 had, which SMPL's save_model used), chumpy arrays for
  v_template/shapedirs/weights/J, a csc J_regressor (legacy stand-in, or a real scipy
  matrix with sparse="scipy")."""
  ch_cls, csc_cls = _ch_class(), _legacy_csc_class()
  chumpy_pkg = types.ModuleType("chumpy")
  chumpy_ch = types.ModuleType("chumpy.ch")
  chumpy_ch.Ch = ch_cls
  chumpy_pkg.ch = chumpy_ch
  modules = {"chumpy": chumpy_pkg, "chumpy.ch": chumpy_ch}
  out = dict(fields)
  for key in ("v_template", "shapedirs", "weights", "J"):
    if key in out:
      out[key] = ch_cls(out[key])
  if sparse == "legacy":
    legacy = types.ModuleType("scipy.sparse.csc")
    legacy.csc_matrix = csc_cls
    modules["scipy.sparse.csc"] = legacy
    out["J_regressor"] = csc_cls(fields["J_regressor"])
  else:
    import scipy.sparse
    out["J_regressor"] = scipy.sparse.csc_matrix(fields["J_regressor"])
  with _stand_in_modules(modules):
    with open(path, "wb") as f:
      _Python2Pickler(f, protocol=2).dump(out)
  return path


def write_smplx_npz(fields: dict, path: str) -> str:
  """The smplx package's layout: the same names, dense arrays, no strings needed."""
  np.savez(path, **{k: np.asarray(v) for k, v in fields.items() if not isinstance(v, str)})
  return path


@pytest.fixture(scope="session")
def template_path(real_data_dir) -> str:
  return os.path.join(real_data_dir, "smpl_topology", "template.ply")


@pytest.fixture(scope="session")
def smpl_fields(template_path) -> dict:
  return build_smpl_fields(template_path)


@pytest.fixture(scope="session")
def smpl_pkl_path(smpl_fields, tmp_path_factory) -> str:
  return write_chumpy_pkl(smpl_fields, str(tmp_path_factory.mktemp("smpl") / "model.pkl"))


@pytest.fixture(scope="session")
def smpl_npz_path(smpl_fields, tmp_path_factory) -> str:
  return write_smplx_npz(smpl_fields, str(tmp_path_factory.mktemp("smpl") / "model.npz"))


@pytest.fixture(scope="session")
def smpl_model(smpl_npz_path):
  return smpl.load(smpl_npz_path)
