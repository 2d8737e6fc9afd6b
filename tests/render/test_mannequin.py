"""Mannequin ray-caster: joints inside the silhouette, occlusion order, the crop camera,
culling against the unculled ray test, and appearance determinism."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.geometry import affine as affine_lib
from jpose.geometry import skeleton
from jpose.render import appearance as appearance_lib
from jpose.render import crop as crop_lib
from jpose.render import mannequin

SIZE = 64
FOCAL = np.array([1145.0, 1147.0], np.float32)
PRINCIPAL = np.array([512.0, 515.0], np.float32)
NAMES = {n: i for i, n in enumerate(skeleton.H36M_17.joint_names)}


def _pose(depth=4000.0, **moved):
  """A person facing the camera (camera y down), arms out, 4 m away; `moved` replaces
  joints by name with (x, y, z_offset) mm."""
  joints = {"Hip": (0, 0, 0), "RHip": (-136, 0, 0), "RKnee": (-136, 450, 0),
            "RFoot": (-136, 890, 0), "LHip": (136, 0, 0), "LKnee": (136, 450, 0),
            "LFoot": (136, 890, 0), "Spine": (0, -240, 0), "Thorax": (0, -495, 0),
            "Neck/Nose": (0, -610, -60), "Head": (0, -720, 0), "LShoulder": (151, -495, 0),
            "LElbow": (420, -420, 0), "LWrist": (650, -330, 0), "RShoulder": (-151, -495, 0),
            "RElbow": (-420, -420, 0), "RWrist": (-650, -330, 0)}
  joints.update(moved)
  out = np.array([joints[n] for n in skeleton.H36M_17.joint_names], np.float32)
  return out + np.array([0.0, 0.0, depth], np.float32)


@functools.lru_cache(maxsize=None)
def _render_fn():
  return jax.jit(mannequin.render_crop, static_argnames=("size", "margin"))


def _render(joints, seed=0):
  look = appearance_lib.sample_appearance(jax.random.key(seed))
  out = _render_fn()(jnp.asarray(joints), FOCAL, PRINCIPAL, size=SIZE, appearance=look)
  return jax.tree.map(np.asarray, out)


def test_outputs_have_the_conventions_shapes_and_ranges():
  out = _render(_pose())
  chex.assert_shape(out["image"], (SIZE, SIZE, 3))
  chex.assert_shape([out["silhouette"], out["parts"], out["depth"]], (SIZE, SIZE))
  chex.assert_shape(out["crop"], (2, 3))
  assert out["image"].dtype == np.float32 and out["parts"].dtype == np.int32
  assert out["image"].min() >= 0.0 and out["image"].max() <= 1.0
  np.testing.assert_array_equal(out["silhouette"], out["parts"] > 0)
  assert set(np.unique(out["parts"])) <= set(range(mannequin.NUM_PRIMITIVES + 1))
  # Depths of the body lie within the person's depth range (4 m +- a body radius).
  body = out["depth"][out["silhouette"] > 0]
  assert body.min() > 4000.0 - 200.0 and body.max() < 4000.0 + 150.0
  assert np.all(np.isinf(out["depth"][out["silhouette"] == 0]))


def test_every_joint_lies_inside_the_silhouette():
  # Each joint is an end of its bone's capsule (radius >= 37 mm, about 1 px here), so the
  # pixel that contains its projection must be on the body.
  for joints in (_pose(), _pose(depth=6000.0, LWrist=(200, -900, -100))):
    out = _render(joints)
    col, row = np.floor(out["joints_2d"]).astype(int).T
    assert np.all(out["silhouette"][row, col] == 1), out["silhouette"][row, col]


def test_crop_affine_maps_pinhole_projections_to_joints_2d():
  joints = _pose(depth=5000.0)
  out = _render(joints)
  original = joints[:, :2] / joints[:, 2:] * FOCAL + PRINCIPAL  # numpy pinhole
  mapped = original @ out["crop"][:, :2].T + out["crop"][:, 2]
  # Measured error 3e-5 px (float32); 1e-3 px leaves 30x.
  np.testing.assert_allclose(mapped, out["joints_2d"], atol=1e-3)
  # The box is 1.3x the joints' larger extent, centred on them.
  extent = out["joints_2d"].max(0) - out["joints_2d"].min(0)
  np.testing.assert_allclose(extent.max(), SIZE / 1.3, rtol=1e-5)
  np.testing.assert_allclose(out["joints_2d"].max(0) + out["joints_2d"].min(0), SIZE, atol=1e-3)


def test_crop_rays_go_through_the_original_pixels():
  affine = crop_lib.box_affine(jnp.array([600.0, 400.0]), 300.0, SIZE)
  rays = np.asarray(mannequin.crop_rays(affine, FOCAL, PRINCIPAL, SIZE))
  # Crop pixel (row 3, col 5) has its centre at (5.5, 3.5); back in the original image:
  x, y = 600.0 - 150.0 + 5.5 * 300.0 / SIZE, 400.0 - 150.0 + 3.5 * 300.0 / SIZE
  np.testing.assert_allclose(rays[3, 5], [(x - 512.0) / 1145.0, (y - 515.0) / 1147.0],
                             rtol=1e-5)


def _pixel_of(out, point):
  pixel = affine_lib.apply_affine(out["crop"], point[:2] / point[2] * FOCAL + PRINCIPAL)
  return int(pixel[1]), int(pixel[0])


@pytest.mark.parametrize("in_front", [True, False])
def test_forearm_in_front_of_the_torso_hides_it_and_behind_is_hidden(in_front):
  # The left forearm crosses the belly horizontally, 250 mm in front of (or behind) it.
  dz = -250.0 if in_front else 250.0
  joints = _pose(LElbow=(300, -150, dz), LWrist=(-150, -150, dz))
  out = _render(joints)
  row, col = _pixel_of(out, np.array([0.0, -150.0, 4000.0 + dz]))
  part = mannequin.PART_NAMES[out["parts"][row, col] - 1]
  if in_front:
    assert part == "LElbow-LWrist", part
  else:
    assert part in ("Hip-Spine", "Spine-Thorax", "LTorso", "RTorso"), part
    # The hidden forearm is still drawn where it sticks out beside the body.
    row, col = _pixel_of(out, np.array([215.0, -150.0, 4000.0 + dz]))
    assert mannequin.PART_NAMES[out["parts"][row, col] - 1] == "LElbow-LWrist"


def test_culled_render_equals_the_unculled_ray_test():
  # Against every capsule for every pixel, with no tiles: depth and winner must agree.
  joints = _pose(LElbow=(300, -150, -250), LWrist=(-150, -150, -250), RKnee=(-200, 400, -300))
  look = appearance_lib.sample_appearance(jax.random.key(0))
  out = _render(joints)
  start, end, radius = mannequin.body_capsules(jnp.asarray(joints), look.girth)
  rays = mannequin.crop_rays(jnp.asarray(out["crop"]), FOCAL, PRINCIPAL, SIZE).reshape(-1, 2)
  dense = np.asarray(mannequin.hit_depths(mannequin.capsule_coefficients(start, end, radius),
                                          rays))
  boxes = mannequin.capsule_boxes(start, end, radius, FOCAL, PRINCIPAL, jnp.asarray(out["crop"]))
  _, _, reaching = mannequin.tile_primitives(
      boxes, jnp.minimum(start[:, 2], end[:, 2]) - radius, SIZE,
      SIZE // mannequin.TILES_PER_SIDE, mannequin.PRIMITIVES_PER_TILE)
  assert int(reaching.max()) <= mannequin.PRIMITIVES_PER_TILE  # no tile dropped any
  depth = dense.min(0).reshape(SIZE, SIZE)
  np.testing.assert_array_equal(np.isfinite(depth), out["silhouette"] > 0)
  hit = np.isfinite(depth)
  # The packed min truncates 5 mantissa bits (< 0.02 mm at 4 m); differently fused float32
  # arithmetic near grazing rays (sqrt of a small discriminant) adds more: measured
  # 0.09 mm at most, so 1 mm.
  np.testing.assert_allclose(out["depth"][hit], depth[hit], atol=1.0)
  winner = dense.argmin(0).reshape(SIZE, SIZE) + 1
  second = np.sort(dense, axis=0)[1].reshape(SIZE, SIZE)
  gap = np.where(np.isfinite(second), second, np.inf) - np.where(hit, depth, 0.0)
  clear = hit & (gap > 0.1)  # ties within the truncation may go either way
  np.testing.assert_array_equal(out["parts"][clear], winner[clear])


def test_boxes_contain_every_pixel_a_capsule_covers():
  joints = _pose(depth=3000.0, LElbow=(300, -150, -400), LWrist=(-150, -150, -600))
  look = appearance_lib.sample_appearance(jax.random.key(0))
  out = _render(joints)
  start, end, radius = mannequin.body_capsules(jnp.asarray(joints), look.girth)
  rays = mannequin.crop_rays(jnp.asarray(out["crop"]), FOCAL, PRINCIPAL, SIZE).reshape(-1, 2)
  dense = np.asarray(mannequin.hit_depths(mannequin.capsule_coefficients(start, end, radius),
                                          rays)).reshape(-1, SIZE, SIZE)
  boxes = np.asarray(mannequin.capsule_boxes(start, end, radius, FOCAL, PRINCIPAL,
                                             jnp.asarray(out["crop"])))
  centres = np.arange(SIZE) + 0.5
  for k in range(mannequin.NUM_PRIMITIVES):
    rows, cols = np.nonzero(np.isfinite(dense[k]))
    if rows.size:
      assert centres[cols].min() >= boxes[k, 0] and centres[cols].max() <= boxes[k, 2], k
      assert centres[rows].min() >= boxes[k, 1] and centres[rows].max() <= boxes[k, 3], k


def test_size_not_a_multiple_of_the_tiles_is_refused():
  look = appearance_lib.sample_appearance(jax.random.key(0))
  with pytest.raises(ValueError, match="size 100"):
    mannequin.render_crop(jnp.asarray(_pose()), FOCAL, PRINCIPAL, 100, look)


def test_appearance_is_deterministic_and_seeded():
  a = appearance_lib.sample_appearance(jax.random.key(3))
  b = appearance_lib.sample_appearance(jax.random.key(3))
  c = appearance_lib.sample_appearance(jax.random.key(4))
  chex.assert_trees_all_equal(a, b)
  assert not np.allclose(a.colours, c.colours)
  same, other = _render(_pose(), seed=3), _render(_pose(), seed=3)
  np.testing.assert_array_equal(same["image"], other["image"])
  different = _render(_pose(), seed=4)
  assert np.abs(same["image"] - different["image"]).mean() > 0.05
