"""Tests for the mesh rasteriser (jpose/render/mesh.py): hard coverage against numpy
point-in-triangle counts, z-buffer depth against ray-plane intersections, the SMPL
template, and the soft silhouette's limit, its custom VJP and a few gradient steps."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.body import mesh_io
from jpose.render import mesh

PINHOLE_UNIT = mesh.Pinhole(focal=jnp.ones(2), principal=jnp.zeros(2))  # pixel = x / z.


def _numpy_inside(corners: np.ndarray, size: int) -> np.ndarray:
  """(S, S) bool: pixel centres inside or on a (3, 2) triangle, by float64 barycentrics."""
  centres = np.arange(size) + 0.5
  x, y = np.meshgrid(centres, centres)
  (x0, y0), (x1, y1), (x2, y2) = corners.astype(np.float64)
  det = (y1 - y2) * (x0 - x2) + (x2 - x1) * (y0 - y2)
  b0 = ((y1 - y2) * (x - x2) + (x2 - x1) * (y - y2)) / det
  b1 = ((y2 - y0) * (x - x2) + (x0 - x2) * (y - y2)) / det
  return (b0 >= 0) & (b1 >= 0) & (1 - b0 - b1 >= 0)


def _flat_mesh(corners_2d):
  """Triangles given in pixels -> vertices at z = 1 for PINHOLE_UNIT, faces."""
  corners_2d = np.asarray(corners_2d, np.float32).reshape(-1, 3, 2)
  vertices = np.concatenate([corners_2d.reshape(-1, 2), np.ones((corners_2d.size // 2, 1),
                                                                np.float32)], axis=-1)
  return jnp.asarray(vertices), jnp.arange(vertices.shape[0], dtype=jnp.int32).reshape(-1, 3)


@pytest.mark.parametrize("window", [2, 4, 40])
def test_single_triangles_match_numpy_point_in_triangle(window):
  """Random triangles (tiny to larger than the image, some half outside): per-pixel
  coverage equals numpy's. window 2 sends most of them through the dense loop, 40 none."""
  size = 32
  rng = np.random.default_rng(0)
  render = jax.jit(lambda v, f: mesh.hard_silhouette(v, f, PINHOLE_UNIT, size,
                                                     window=window, chunk=4))
  total = 0
  for scale in (1.5, 6.0, 20.0, 60.0):
    for _ in range(3):
      corners = rng.uniform(-0.2 * size, 1.2 * size, (1, 2)) + rng.normal(0, scale, (3, 2))
      vertices, faces = _flat_mesh(corners)
      ours = np.asarray(render(vertices, faces)) > 0
      np.testing.assert_array_equal(ours, _numpy_inside(np.asarray(vertices[:, :2]), size))
      total += ours.sum()
  assert total > 500  # the triangles really covered pixels.


def test_many_faces_union_and_batch_vmap():
  """A batch of 3-triangle meshes, vmapped: the union of numpy masks, per example."""
  size, batch = 24, 4
  rng = np.random.default_rng(1)
  corners = rng.uniform(0, size, (batch, 3, 1, 2)) + rng.normal(0, 4, (batch, 3, 3, 2))
  meshes = [_flat_mesh(c) for c in corners]
  vertices = jnp.stack([m[0] for m in meshes])
  out = jax.jit(jax.vmap(lambda v: mesh.hard_silhouette(v, meshes[0][1], PINHOLE_UNIT,
                                                        size, window=3)))(vertices)
  for b in range(batch):
    expected = np.any([_numpy_inside(c, size) for c in corners[b].astype(np.float32)], axis=0)
    np.testing.assert_array_equal(np.asarray(out[b]) > 0, expected)


def _cube(centre, half):
  """Axis-aligned cube: 8 vertices, 12 triangles."""
  signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
  vertices = np.asarray(centre) + half * signs
  quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
  faces = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
  return jnp.asarray(vertices, jnp.float32), jnp.asarray(faces, jnp.int32)


def test_cube_silhouette_depth_and_shading():
  """A cube facing a pinhole camera: the silhouette is its front square (pixel count by
  hand), the z-buffer holds the front face's depth, owned by the two front triangles,
  which face the light head-on."""
  size, focal = 40, 50.0
  vertices, faces = _cube(centre=(0.1, -0.05, 5.0), half=1.0)
  camera = mesh.Pinhole(focal=jnp.full(2, focal), principal=jnp.full(2, size / 2))
  silhouette = np.asarray(jax.jit(mesh.hard_silhouette, static_argnums=3)(
      vertices, faces, camera, size))
  # Front face z = 4: x in [-0.9, 1.1] -> pixels [8.75, 33.75]; y in [-1.05, 0.95] ->
  # [6.875, 31.875]. Centres j + 0.5 inside: j = 9..33 (25) and i = 7..31 (25).
  assert silhouette.sum() == 25 * 25
  assert silhouette[7:32, 9:34].all()
  raster = jax.jit(mesh.rasterize, static_argnums=3)(vertices, faces, camera, size)
  depth = np.asarray(raster.depth)
  np.testing.assert_allclose(depth[silhouette > 0], 4.0, rtol=1e-6)
  assert np.isinf(depth[silhouette == 0]).all()
  owner = np.asarray(raster.face_index)
  front = [k for k, face in enumerate(np.asarray(faces))
           if np.all(np.asarray(vertices)[face, 2] == 4.0)]
  assert set(np.unique(owner[silhouette > 0])) == set(front)
  assert (owner[silhouette == 0] == -1).all()
  shaded = np.asarray(mesh.shade(vertices, faces, raster))
  np.testing.assert_allclose(shaded[silhouette > 0], 1.0, rtol=1e-6)
  assert (shaded[silhouette == 0] == 0).all()


def test_depth_is_perspective_correct_on_a_tilted_plane():
  """A quad on the plane z = 6 + 0.5 x - 0.3 y: the z-buffer equals the ray-plane
  intersection at every covered pixel centre (z linear in screen space: 0.09 off, measured)."""
  size, focal, c = 32, 40.0, 16.0
  corners = np.array([[-1.5, -1.2], [1.4, -1.3], [1.5, 1.2], [-1.3, 1.4]])
  z = 6 + 0.5 * corners[:, 0] - 0.3 * corners[:, 1]
  vertices = jnp.asarray(np.concatenate([corners, z[:, None]], axis=-1), jnp.float32)
  faces = jnp.asarray([[0, 1, 2], [0, 2, 3]], jnp.int32)
  camera = mesh.Pinhole(focal=jnp.full(2, focal), principal=jnp.full(2, c))
  raster = jax.jit(mesh.rasterize, static_argnums=3)(vertices, faces, camera, size)
  centres = np.arange(size) + 0.5
  u, v = np.meshgrid((centres - c) / focal, (centres - c) / focal)
  expected = 6 / (1 - 0.5 * u + 0.3 * v)
  covered = np.isfinite(np.asarray(raster.depth))
  assert covered.sum() > 300
  error = np.abs(np.asarray(raster.depth)[covered] - expected[covered]).max()
  # Measured 1.6e-6 (float32); 10x margin.
  assert error < 2e-5, error
  # Lambert: both triangles lie in one plane with normal (-0.5, 0.3, 1) / |.|.
  normal_z = 1 / np.sqrt(0.25 + 0.09 + 1)
  shaded = np.asarray(mesh.shade(vertices, faces, raster, ambient=0.1))
  np.testing.assert_allclose(shaded[covered], 0.1 + 0.9 * normal_z, rtol=1e-5)


@pytest.fixture(scope="module")
def smpl_template(real_data_dir):
  """The SMPL template turned to face the camera (y down, z away), metres."""
  vertices, faces = mesh_io.read_ply(os.path.join(real_data_dir, "smpl_topology",
                                                  "template.ply"))
  assert vertices.shape == (6890, 3) and faces.shape == (13776, 3)
  return jnp.asarray(vertices * np.array([1, -1, -1], np.float32)), jnp.asarray(faces)


def test_smpl_template_silhouette(smpl_template):
  vertices, faces = smpl_template
  size = 128
  camera = mesh.WeakPerspective(scale=jnp.asarray(1.0), translation=jnp.zeros(2))
  render = jax.jit(lambda v, window: mesh.hard_silhouette(v, faces, camera, size,
                                                         window=window), static_argnums=1)
  silhouette = np.asarray(render(vertices, 4))
  # The passes agree: window 2 sends the 302 faces that span 3 pixel columns or rows at
  # this size to the dense loop (window 4: none).
  np.testing.assert_array_equal(silhouette, np.asarray(render(vertices, 2)))
  xy = np.asarray(mesh.project(vertices, camera, size)[0])
  pixel = np.floor(xy).astype(int)
  assert np.all((pixel >= 0) & (pixel < size))
  own = silhouette[pixel[:, 1], pixel[:, 0]]
  padded = np.pad(silhouette, 1)
  neighbourhood = np.max([padded[pixel[:, 1] + 1 + di, pixel[:, 0] + 1 + dj]
                          for di in (-1, 0, 1) for dj in (-1, 0, 1)], axis=0)
  # Every vertex has a covered pixel centre within its 3x3 pixels (measured: all; the
  # vertex's own pixel for 90 %: a pixel centre can miss a finger's thin faces).
  # Controls, measured: the silhouette moved down one row leaves 1.5 % of the vertices
  # without a covered 3x3 neighbour and 82 % on their own pixel; transposed, 12 %.
  assert neighbourhood.min() == 1
  assert own.mean() > 0.85, own.mean()
  rows, cols = np.nonzero(silhouette)
  # T-pose: 1.8 m tall and 1.8 m wide at 0.9 of the image (115 x 118 px measured), and
  # the body fills 18 % of its bounding box (arms out).
  assert 110 <= np.ptp(rows) + 1 <= 120 and 110 <= np.ptp(cols) + 1 <= 120
  assert 0.15 < silhouette.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1)) < 0.22


def test_soft_silhouette_tends_to_the_hard_one(smpl_template):
  vertices, faces = smpl_template
  size = 64
  camera = mesh.WeakPerspective(scale=jnp.asarray(1.0), translation=jnp.zeros(2))
  hard = np.asarray(jax.jit(lambda v: mesh.hard_silhouette(v, faces, camera, size))(
      vertices))
  errors = []
  render = jax.jit(lambda sigma: mesh.soft_silhouette(vertices, faces, camera, size,
                                                      sigma=sigma), static_argnums=0)
  for sigma in (1.0, 0.1, 0.01, 0.001):
    soft = np.asarray(render(sigma))
    errors.append(np.abs(soft - hard).mean())
  # Measured mean |soft - hard|: 0.119, 0.033, 0.0127, 0.0041 (each sigma / 10 at
  # least halves it): only pixels within ~sqrt(sigma) of an edge differ.
  assert all(a > 2 * b for a, b in zip(errors, errors[1:])), errors
  assert errors[-1] < 0.01, errors


def _dense_soft_reference(corners, size, sigma):
  """(S, S) SoftRas silhouette of (F, 3, 2) pixel triangles over every pair, no cut-off,
  written directly from the formula (differentiable by plain autodiff)."""
  centres = jnp.arange(size) + 0.5
  px, py = jnp.meshgrid(centres, centres)
  p = jnp.stack([px, py], axis=-1)[None]  # (1, S, S, 2)
  d2 = []
  cross = []
  for k in range(3):
    a = corners[:, k][:, None, None]
    b = corners[:, (k + 1) % 3][:, None, None]
    e = b - a
    t = jnp.clip(jnp.sum((p - a) * e, -1) / jnp.sum(e * e, -1), 0, 1)
    d2.append(jnp.sum((p - a - t[..., None] * e)**2, -1))
    cross.append(e[..., 0] * (p[..., 1] - a[..., 1]) - e[..., 1] * (p[..., 0] - a[..., 0]))
  d2 = jnp.min(jnp.stack(d2), 0)
  cross = jnp.stack(cross)
  inside = jnp.all(cross >= 0, 0) | jnp.all(cross <= 0, 0)
  probability = jax.nn.sigmoid(jnp.where(inside, 1.0, -1.0) * d2 / sigma)
  return 1 - jnp.prod(1 - probability, axis=0)


def test_soft_silhouette_and_its_vjp_match_a_dense_reference():
  """Values and vertex gradients of the windowed + dense-loop soft silhouette against
  plain autodiff of an all-pairs reference, through the window pass and through the
  dense loop."""
  size, sigma = 20, 0.8
  rng = np.random.default_rng(2)
  corners = rng.uniform(2, 18, (5, 1, 2)) + rng.normal(0, 2.5, (5, 3, 2))
  vertices, faces = _flat_mesh(corners)
  target = jnp.asarray(rng.uniform(0, 1, (size, size)), jnp.float32)

  def reference_silhouette(v):  # PINHOLE_UNIT: pixel = (x, y) / z.
    return _dense_soft_reference((v[:, :2] / v[:, 2:]).reshape(-1, 3, 2), size, sigma)

  reference = np.asarray(jax.jit(reference_silhouette)(vertices))
  reference_grad = np.asarray(jax.jit(jax.grad(
      lambda v: jnp.sum(target * reference_silhouette(v))))(vertices))
  results = []
  for window in (4, 40):  # every face through the dense loop; every face windowed.
    @jax.jit
    def ours_and_grad(v, window=window):
      def silhouette(v):
        return mesh.soft_silhouette(v, faces, PINHOLE_UNIT, size, sigma=sigma,
                                    window=window, chunk=2)
      return silhouette(v), jax.grad(lambda v: jnp.sum(target * silhouette(v)))(v)
    ours, grad = (np.asarray(a) for a in ours_and_grad(vertices))
    # The cut-off drops D < 1e-4 per face, so at most 5e-4 for 5 faces (measured 9.5e-5).
    assert np.abs(ours - reference).max() < 5e-4, np.abs(ours - reference).max()
    # Measured relative error 7.2e-4 (the cut-off again); ~7x margin. z gets the
    # projection's gradient (pixel = x / z) in both.
    scale = np.abs(reference_grad).max()
    assert np.abs(grad - reference_grad).max() < 5e-3 * scale, (window, grad, reference_grad)
    # The window and dense-loop passes give the same numbers (measured identical).
    results.append((ours, grad))
  for ours, grad in results[1:]:
    np.testing.assert_allclose(ours, results[0][0], atol=1e-6)
    np.testing.assert_allclose(grad, results[0][1], atol=1e-5 * scale)


def test_vmap_equals_one_mesh_at_a_time():
  """Batched (flat scatter/gather batching rules) against per-mesh results: coverage,
  z-buffer, soft silhouette and its gradient."""
  size = 20
  rng = np.random.default_rng(3)
  meshes = [_flat_mesh(rng.uniform(3, 17, (4, 1, 2)) + rng.normal(0, 3, (4, 3, 2)))
            for _ in range(3)]
  faces = meshes[0][1]
  vertices = jnp.stack([m[0] for m in meshes]) * jnp.array([1.0, 1.0, 2.0])  # z = 2.
  camera = mesh.Pinhole(focal=jnp.full(2, 2.0), principal=jnp.zeros(2))

  def everything(v):
    soft, grad = jax.value_and_grad(
        lambda v: jnp.sum(mesh.soft_silhouette(v, faces, camera, size, window=6)**2))(v)
    raster = mesh.rasterize(v, faces, camera, size, window=3)
    return mesh.hard_silhouette(v, faces, camera, size, window=3), raster, soft, grad

  batched = jax.jit(jax.vmap(everything))(vertices)
  single = jax.jit(everything)
  for b in range(vertices.shape[0]):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x[b], y, rtol=1e-5, atol=1e-6),
                 batched, single(vertices[b]))
  assert float(batched[0].sum()) > 50


def test_gradient_steps_move_a_square_towards_its_target():
  """A square (two triangles) whose target silhouette sits 3 px to the right: a few
  gradient steps on an L2 loss lower the loss and move every vertex in +x."""
  size = 32
  square = np.array([[8.2, 10.1], [20.3, 10.1], [20.3, 22.2], [8.2, 22.2]])
  vertices = jnp.asarray(np.concatenate([square, np.ones((4, 1))], -1), jnp.float32)
  faces = jnp.asarray([[0, 1, 2], [0, 2, 3]], jnp.int32)
  target = mesh.hard_silhouette(vertices + jnp.array([3.0, 0, 0]), faces, PINHOLE_UNIT, size)

  @jax.jit
  def loss_and_grad(v):
    def loss(v):
      return jnp.mean((mesh.soft_silhouette(v, faces, PINHOLE_UNIT, size, sigma=1.0)
                       - target)**2)
    return jax.value_and_grad(loss)(v)

  losses = []
  v = vertices
  for _ in range(20):
    value, grad = loss_and_grad(v)
    losses.append(float(value))
    v = v - 20.0 * grad * jnp.array([1.0, 1.0, 0.0])  # move in the image plane only.
  shift = np.asarray(v - vertices)
  # Measured: loss 0.057 -> 0.024, every vertex +1.67 to +1.78 px in x, the centroid
  # -0.12 px in y (the vertices also spread in y towards the target's pixel rows).
  assert losses[-1] < 0.5 * losses[0], losses
  assert np.all(shift[:, 0] > 1.0), shift
  assert abs(shift[:, 1].mean()) < 0.5, shift


def test_faces_behind_a_pinhole_camera_are_dropped():
  vertices = jnp.asarray([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, -0.5],
                          [-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0]])
  faces = jnp.asarray([[0, 1, 2], [3, 4, 5]], jnp.int32)
  camera = mesh.Pinhole(focal=jnp.full(2, 8.0), principal=jnp.full(2, 8.0))
  render = jax.jit(lambda v, f: (mesh.hard_silhouette(v, f, camera, 16),
                                 mesh.soft_silhouette(v, f, camera, 16)))
  both = render(vertices, faces)
  front = render(vertices[3:], faces[1:] - 3)
  behind = render(vertices[:3], faces[:1])
  np.testing.assert_array_equal(both[0], front[0])
  assert front[0].sum() > 10
  assert float(behind[0].max()) == 0.0 and float(behind[1].max()) == 0.0


def test_bad_input_is_named():
  vertices, faces = _flat_mesh([[1, 1], [5, 1], [1, 5]])
  with pytest.raises(ValueError, match="vertices"):
    mesh.hard_silhouette(vertices[:, :2], faces, PINHOLE_UNIT, 8)
  with pytest.raises(ValueError, match="faces"):
    mesh.hard_silhouette(vertices, faces.astype(jnp.float32), PINHOLE_UNIT, 8)
  with pytest.raises(TypeError, match="camera"):
    mesh.hard_silhouette(vertices, faces, (1.0, 0.0), 8)
