"""SMPL loaders (chumpy pickle without chumpy, smplx npz), regressors and the PLY reader."""

from __future__ import annotations

import importlib.util
import os
import pickle
import pickletools
import sys

import numpy as np
import pytest

from jpose.body import mesh_io
from jpose.body import model as body_model
from jpose.body import smpl
from tests.body import conftest as fixture


def test_template_ply_has_smpl_topology(template_path):
  vertices, faces = mesh_io.read_ply(template_path)
  assert vertices.shape == (6890, 3) and faces.shape == (13776, 3)
  # A closed manifold mesh of SMPL's size: every vertex used, Euler characteristic 2
  # (V - E + F with each edge shared by two triangles), and a 1.6-2 m tall body.
  assert np.bincount(faces.ravel(), minlength=6890).min() >= 3
  edges = {tuple(sorted(e)) for f in faces for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
  assert 6890 - len(edges) + 13776 == 2
  assert 1.6 < np.ptp(vertices[:, 1]) < 2.0


def test_ascii_ply_and_bad_files(tmp_path):
  path = tmp_path / "quad.ply"
  path.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\n"
                  "property float y\nproperty float z\nelement face 2\n"
                  "property list uchar int vertex_indices\nend_header\n"
                  "0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n")
  vertices, faces = mesh_io.read_ply(str(path))
  np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3]])
  np.testing.assert_array_equal(vertices[2], [1, 1, 0])
  with pytest.raises(mesh_io.MeshFileError, match="missing.ply: file not found"):
    mesh_io.read_ply(str(tmp_path / "missing.ply"))
  truncated = tmp_path / "truncated.ply"
  truncated.write_text(path.read_text()[:-12])
  with pytest.raises(mesh_io.MeshFileError, match="truncated.ply: element 'face'"):
    mesh_io.read_ply(str(truncated))


def test_chumpy_pickle_loads_without_chumpy(smpl_pkl_path, smpl_fields):
  assert importlib.util.find_spec("chumpy") is None  # the point of the test.
  with open(smpl_pkl_path, "rb") as f:
    raw = f.read()
  # References and strings as in the real (Python 2) files.
  assert b"chumpy.ch" in raw and b"scipy.sparse.csc" in raw and b"numpy.core.multiarray" in raw
  opcodes = {op.name for op, _, _ in pickletools.genops(raw)}
  assert "BINSTRING" in opcodes and not opcodes & {"BINUNICODE", "SHORT_BINUNICODE"}
  model = smpl.load(smpl_pkl_path)
  assert "chumpy" not in sys.modules
  np.testing.assert_allclose(model.v_template, smpl_fields["v_template"], atol=1e-7)
  np.testing.assert_allclose(model.shapedirs, smpl_fields["shapedirs"], atol=1e-7)
  np.testing.assert_allclose(model.weights, smpl_fields["weights"], atol=1e-7)
  np.testing.assert_allclose(model.j_regressor, smpl_fields["J_regressor"], atol=1e-7)
  np.testing.assert_array_equal(model.faces, smpl_fields["f"])
  assert model.parents == fixture.SMPL_PARENTS == smpl.PARENTS


def test_npz_and_pickle_give_the_same_model(smpl_pkl_path, smpl_npz_path, smpl_model):
  from_pkl = smpl.load(smpl_pkl_path)
  for field in ("v_template", "shapedirs", "posedirs", "j_regressor", "weights", "faces",
                "h36m_regressor", "lsp_regressor"):
    np.testing.assert_array_equal(getattr(from_pkl, field), getattr(smpl_model, field))


def test_pickle_with_a_modern_scipy_matrix(smpl_fields, tmp_path):
  pytest.importorskip("scipy")
  path = fixture.write_chumpy_pkl(smpl_fields, str(tmp_path / "modern.pkl"), sparse="scipy")
  model = smpl.load(path)
  np.testing.assert_allclose(model.j_regressor, smpl_fields["J_regressor"], atol=1e-7)


def test_num_betas_keeps_the_leading_directions(smpl_npz_path, smpl_fields):
  model = smpl.load(smpl_npz_path, num_betas=4)
  assert model.num_betas == 4
  np.testing.assert_allclose(model.shapedirs, smpl_fields["shapedirs"][..., :4], atol=1e-7)


def test_a_pickle_that_runs_code_is_refused(tmp_path):
  class Exploit:
    def __reduce__(self):
      return (os.system, ("echo owned",))
  path = tmp_path / "evil.pkl"
  path.write_bytes(pickle.dumps({"v_template": Exploit()}, protocol=2))
  with pytest.raises(smpl.SmplFileError, match=r"evil.pkl: cannot unpickle.*refuses"):
    smpl.load(str(path))


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.pop("weights"), r"missing field\(s\) \['weights'\]"),
    (lambda f: f.update(weights=f["weights"][:, :20]), r"field 'weights' has shape \(6890, 20\)"),
    (lambda f: f.update(posedirs=f["posedirs"][..., :100]), "field 'posedirs' has 100 pose"),
    (lambda f: f.update(v_template=np.full((6890, 3), np.nan)), "field 'v_template' contains NaN"),
    (lambda f: f.update(kintree_table=np.zeros((3, 24))), "field 'kintree_table' has shape"),
    (lambda f: f.update(f=np.full((2, 3), 7000)), "field 'f' indexes vertices outside"),
])
def test_malformed_fields_name_the_field_and_file(smpl_fields, tmp_path, edit, message):
  fields = dict(smpl_fields)
  edit(fields)
  path = fixture.write_smplx_npz(fields, str(tmp_path / "bad.npz"))
  with pytest.raises(body_model.BodyModelError, match=f"bad.npz: {message}"):
    smpl.load(path)


def test_npz_extras_that_need_pickle_are_skipped(smpl_fields, tmp_path):
  extras = np.empty(1, dtype=object)
  extras[0] = {"sparse": "prior"}
  path = tmp_path / "extras.npz"
  np.savez(path, J_regressor_prior=extras,
           **{k: v for k, v in smpl_fields.items() if not isinstance(v, str)})
  assert smpl.load(str(path)).num_vertices == 6890
  fields = {k: v for k, v in smpl_fields.items() if not isinstance(v, str)}
  fields["weights"] = extras
  np.savez(tmp_path / "pickled.npz", **fields)
  with pytest.raises(smpl.SmplFileError, match="pickled.npz: field 'weights' is a pickled"):
    smpl.load(str(tmp_path / "pickled.npz"))


def test_truncated_and_missing_files(smpl_npz_path, smpl_pkl_path, tmp_path):
  for source in (smpl_npz_path, smpl_pkl_path):
    path = tmp_path / ("cut" + os.path.splitext(source)[1])
    with open(source, "rb") as f:
      path.write_bytes(f.read()[:100_000])
    with pytest.raises(smpl.SmplFileError, match=f"{path.name}: .*(truncated|readable)"):
      smpl.load(str(path))
  with pytest.raises(smpl.SmplFileError, match="nowhere.pkl: file not found"):
    smpl.load(str(tmp_path / "nowhere.pkl"))


def test_approximate_regressors(smpl_model, smpl_fields):
  v = np.asarray(smpl_model.v_template)
  joints = smpl_fields["J_regressor"] @ smpl_fields["v_template"]
  h36m = np.asarray(smpl_model.h36m_regressor) @ v
  lsp = np.asarray(smpl_model.lsp_regressor) @ v
  np.testing.assert_allclose(smpl_model.h36m_regressor.sum(axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(h36m[0], 0.5 * (joints[1] + joints[2]), atol=1e-6)  # hip midpoint
  np.testing.assert_allclose(h36m[1], joints[2], atol=1e-6)  # RHip is SMPL's right hip
  np.testing.assert_allclose(h36m[16], joints[21], atol=1e-6)  # RWrist
  np.testing.assert_allclose(lsp[0], joints[8], atol=1e-6)  # RAnkle
  # Head top: within 2 cm of the highest point, centred; nose: the face's front.
  assert v[:, 1].max() - h36m[10, 1] < 0.02 and abs(h36m[10, 0]) < 0.02
  np.testing.assert_allclose(lsp[13], h36m[10], atol=1e-6)
  face = v[(np.abs(v[:, 0]) < 0.05) & (v[:, 1] > v[:, 1].max() - 0.2)]
  assert h36m[9, 2] > face[:, 2].max() - 0.01 and h36m[9, 1] < h36m[10, 1]
  # The body's right (H36M's RHip, index 1) is on SMPL's -x side.
  assert h36m[1, 0] < 0 < h36m[4, 0]


def test_regressor_files_and_cocoplus(smpl_fields, smpl_npz_path, tmp_path):
  rng = np.random.default_rng(0)
  h36m = rng.random((17, 6890)).astype(np.float32)
  np.save(tmp_path / "h36m.npy", h36m)
  model = smpl.load(smpl_npz_path, h36m_regressor_path=str(tmp_path / "h36m.npy"))
  np.testing.assert_array_equal(model.h36m_regressor, h36m)
  np.save(tmp_path / "short.npy", h36m[:16])
  with pytest.raises(smpl.SmplFileError, match=r"short.npy: regressor has shape \(16, 6890\)"):
    smpl.load(smpl_npz_path, h36m_regressor_path=str(tmp_path / "short.npy"))
  cocoplus = rng.random((19, 6890))
  path = fixture.write_chumpy_pkl({**smpl_fields, "cocoplus_regressor": cocoplus},
                                  str(tmp_path / "hmr.pkl"))
  np.testing.assert_allclose(smpl.load(path).lsp_regressor, cocoplus[:14], atol=1e-6)
