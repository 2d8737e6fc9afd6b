"""soft_argmax_3d and the voxel <-> crop-pixel / mm conversions of jpose.geometry.heatmap."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import affine as affine_lib
from jpose.geometry import heatmap

GRID = (6, 7, 9)  # (d, h, w): unequal, so a swapped axis cannot pass.


def _peaked(shape, index, peak=1e4):
  return jnp.zeros(shape).at[index].set(peak)


def test_a_peaked_volume_gives_its_voxel_centre():
  rng = np.random.default_rng(0)
  for _ in range(5):
    k, i, j = (int(rng.integers(n)) for n in GRID)
    xyz = heatmap.soft_argmax_3d(_peaked(GRID, (k, i, j)))
    # Measured error 0: exp(0 - 1e4) underflows to exactly 0 in float32.
    np.testing.assert_array_equal(np.asarray(xyz), [j + 0.5, i + 0.5, k + 0.5])


def test_batched_volumes_keep_each_joint_apart():
  volumes = jnp.stack([jnp.stack([_peaked(GRID, (0, 0, 0)), _peaked(GRID, (5, 6, 8))]),
                       jnp.stack([_peaked(GRID, (2, 3, 4)), jnp.zeros(GRID)])])  # (2, 2, ...)
  coords = heatmap.soft_argmax_volumes(volumes)
  chex.assert_shape(coords, (2, 2, 3))
  expected = [[[0.5, 0.5, 0.5], [8.5, 6.5, 5.5]],
              [[4.5, 3.5, 2.5], [4.5, 3.5, 3.0]]]  # a flat volume: the grid's centre.
  np.testing.assert_allclose(np.asarray(coords), expected, atol=1e-6)  # measured 0


def test_matches_a_dense_numpy_expectation():
  logits = np.random.default_rng(1).normal(0, 3, GRID)
  p = np.exp(logits - logits.max())
  p /= p.sum()
  z, y, x = np.meshgrid(*(np.arange(n) + 0.5 for n in GRID), indexing="ij")
  expected = [np.sum(p * x), np.sum(p * y), np.sum(p * z)]
  got = heatmap.soft_argmax_3d(jnp.asarray(logits, jnp.float32))
  # Measured max error 8.7e-7 (float32 sums over 378 voxels).
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_gradient_matches_central_differences_in_float64():
  with jax.enable_x64(True):
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(0, 2, GRID), jnp.float64)
    weights = jnp.asarray([1.0, -2.0, 0.5], jnp.float64)
    f = lambda v: jnp.dot(heatmap.soft_argmax_3d(v), weights)
    grad = jax.grad(f)(logits)
    assert grad.dtype == jnp.float64
    eps = 1e-6
    for _ in range(4):
      direction = jnp.asarray(rng.normal(size=GRID), jnp.float64)
      numeric = (f(logits + eps * direction) - f(logits - eps * direction)) / (2 * eps)
      # Measured |difference| <= 9.4e-10 against values of order 1.
      np.testing.assert_allclose(float(jnp.sum(grad * direction)), float(numeric), atol=1e-8)


def test_bf16_volumes_accumulate_in_float32():
  logits = jnp.asarray(np.random.default_rng(3).normal(0, 4, (2, 3) + GRID), jnp.float32)
  low = logits.astype(jnp.bfloat16)
  got = heatmap.soft_argmax_volumes(low)
  assert got.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(got)))
  # Exactly the float32 computation on the rounded logits ...
  np.testing.assert_array_equal(np.asarray(got),
                                np.asarray(heatmap.soft_argmax_volumes(low.astype(jnp.float32))))
  # ... and within the logits' bf16 rounding (8 bits; |logit| ~ 4 -> ~0.016) of the
  # unrounded ones: measured max 0.038 voxel; bound 0.4 voxel.
  error = float(jnp.max(jnp.abs(got - heatmap.soft_argmax_volumes(logits))))
  assert error < 0.4, error


def test_huge_logits_give_finite_joints_and_gradients():
  signs = np.random.default_rng(4).choice([-1.0, 1.0], GRID)
  logits = jnp.asarray(1e4 * signs, jnp.float32)
  xyz, vjp = jax.vjp(heatmap.soft_argmax_3d, logits)
  (grad,) = vjp(jnp.ones(3))
  assert bool(jnp.all(jnp.isfinite(xyz))) and bool(jnp.all(jnp.isfinite(grad)))
  assert float(jnp.max(jnp.abs(grad))) > 0  # the tied +1e4 voxels still pull.
  # The expectation over the +1e4 voxels only, each weighted equally.
  z, y, x = np.nonzero(signs > 0)
  np.testing.assert_allclose(np.asarray(xyz), [x.mean() + 0.5, y.mean() + 0.5, z.mean() + 0.5],
                             atol=1e-5)  # measured 2.2e-7


def test_voxel_centres_land_on_crop_pixel_centres_and_depth_bins():
  grid, crop, depth_range = (8, 16, 16), 64.0, 2000.0  # stride 4 px, bins of 250 mm
  voxel = jnp.asarray([[0.5, 0.5, 0.5], [15.5, 2.5, 7.5], [0.0, 16.0, 4.0]])
  crop_xyz = heatmap.voxel_to_crop(voxel, grid, crop, depth_range)
  expected = [[2.0, 2.0, -875.0],  # voxel 0's centre: crop pixel (0.5 + 0) * 4, bin centre
              [62.0, 10.0, 875.0],
              [0.0, 64.0, 0.0]]  # grid edges are crop edges; mid-depth is the root's z.
  np.testing.assert_allclose(np.asarray(crop_xyz), expected, atol=1e-4)
  np.testing.assert_allclose(np.asarray(heatmap.crop_to_voxel(crop_xyz, grid, crop, depth_range)),
                             np.asarray(voxel), atol=1e-5)


def test_normalized_coordinates_span_minus_half_to_half():
  grid = (8, 16, 32)
  corners = jnp.asarray([[0.0, 0.0, 0.0], [32.0, 16.0, 8.0], [16.0, 8.0, 4.0]])
  np.testing.assert_allclose(np.asarray(heatmap.voxel_to_normalized(corners, grid)),
                             [[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])


def test_crop_to_camera_inverts_the_crop_projection_of_a_pose():
  """Joints projected through a pinhole and a crop, with their depth relative to the root,
  come back as the root-relative pose (the integral net's evaluation path)."""
  from jpose.render import crop as crop_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  focal, principal = np.array([1145.0, 1144.0]), np.array([512.5, 515.4])
  poses, crops, depths, joints = [], [], [], []
  for _ in range(4):
    pose = rng.normal(0.0, 300.0, (17, 3))
    pose -= pose[0]
    root = np.array([rng.uniform(-800, 800), rng.uniform(-400, 400), rng.uniform(3000, 6000)])
    pixels = crop_lib.project_pinhole(jnp.asarray(pose + root), focal, principal)
    centre, side = crop_lib.box_around(pixels)
    affine = crop_lib.box_affine(centre, side, 256)
    crop_px = affine_lib.apply_affine(affine, pixels)
    joints.append(np.concatenate([np.asarray(crop_px), pose[:, 2:]], axis=-1))
    poses.append(pose), crops.append(np.asarray(affine)), depths.append(root[2])
  n = len(poses)
  back = heatmap.crop_to_camera(jnp.asarray(np.stack(joints), jnp.float32),
                                jnp.asarray(np.stack(crops), jnp.float32),
                                jnp.asarray(depths, jnp.float32),
                                jnp.asarray(np.tile(focal, (n, 1)), jnp.float32),
                                jnp.asarray(np.tile(principal, (n, 1)), jnp.float32))
  # float32 rounding of ~1e3 px and ~5e3 mm values: measured max 6.3e-4 mm; bound 8x that.
  np.testing.assert_allclose(np.asarray(back), np.stack(poses), atol=5e-3)
