"""Tests for the on-device image augmentation (jpose/data/augment.py).

Geometry is checked against drawn discs whose centroids must follow the joints, against
the crop affine, and against a pinhole camera; colour ops against numpy/colorsys
references of imgaug's formulas.
"""

from __future__ import annotations

import colorsys
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.data import augment
from jpose.geometry import skeleton

PERM = skeleton.H36M_17.flip_permutation
# Jitted once per parameter set: eager vmap runs op by op and is several times slower.
_augment = jax.jit(augment.augment, static_argnums=(2, 3))


def _disc_image(size: int, centres: np.ndarray, radius: float) -> np.ndarray:
  """(size, size, 3) uint8 image, black with white anti-aliased discs (8x8 supersampled
  per pixel, so each disc's intensity centroid is its centre to ~0.01 px)."""
  sub = 8
  offsets = (np.arange(sub) + 0.5) / sub
  x = (np.arange(size)[:, None] + offsets[None, :]).reshape(-1)
  xx, yy = np.meshgrid(x, x)
  cover = np.zeros_like(xx)
  for cx, cy in centres:
    cover = np.maximum(cover, ((xx - cx)**2 + (yy - cy)**2 <= radius**2).astype(float))
  cover = cover.reshape(size, sub, size, sub).mean(axis=(1, 3))
  return np.repeat(np.round(cover * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _grid_joints(size: int, spacing: float) -> np.ndarray:
  """17 joints on a 5-wide grid centred in the crop."""
  cols, rows = np.arange(17) % 5, np.arange(17) // 5
  return np.stack([size / 2 + (cols - 2) * spacing, size / 2 + (rows - 1.5) * spacing],
                  axis=-1).astype(np.float32)


def _batch(image, joints, batch: int, pose_3d=None, crop=None):
  out = {"image": jnp.asarray(np.broadcast_to(image, (batch,) + image.shape)),
         "joints_2d": jnp.asarray(np.broadcast_to(joints, (batch, 17, 2))),
         "visible": jnp.ones((batch, 17), jnp.float32)}
  if pose_3d is not None:
    out["pose_3d"] = jnp.asarray(np.broadcast_to(pose_3d, (batch, 17, 3)), jnp.float32)
  if crop is not None:
    out["crop"] = jnp.asarray(np.broadcast_to(crop, (batch, 2, 3)), jnp.float32)
  return out


def test_discs_follow_joints():
  """Each disc drawn at a joint ends with its intensity centroid on the augmented joint."""
  size, spacing, radius = 96, 14.0, 2.5
  joints = _grid_joints(size, spacing)
  image = _disc_image(size, joints, radius)
  batch = _batch(image, joints, 8)
  out = _augment(batch, jax.random.key(3),
                                                   augment.GEOMETRIC_ONLY)
  img = np.asarray(out["image"])[..., 0]
  aug_joints = np.asarray(out["joints_2d"])
  errors = []
  half = 5  # window half-width: scaled disc radius (<= 3.2) plus a pixel of blur.
  centres = np.arange(size) + 0.5
  for b in range(img.shape[0]):
    for j in range(17):
      x, y = aug_joints[b, j]
      if not (half + 1 < x < size - half - 1 and half + 1 < y < size - half - 1):
        continue
      cols = (centres > x - half) & (centres < x + half)
      rows = (centres > y - half) & (centres < y + half)
      window = img[b][np.ix_(rows, cols)]
      cx = (window.sum(axis=0) * centres[cols]).sum() / window.sum()
      cy = (window.sum(axis=1) * centres[rows]).sum() / window.sum()
      errors.append(np.hypot(cx - x, cy - y))
  errors = np.array(errors)
  # Measured: 0.030 px max over 136 joints (8 draws); the brief's bound is 0.5 px. A
  # half-pixel convention slip or a wrong rotation sense gives >= 0.5 px.
  assert errors.size > 100, errors.size
  assert errors.max() < 0.2, errors.max()
  # The draws really moved the joints (rotation, scale, shift and flips happened).
  assert np.abs(aug_joints - joints).max() > 10


def test_visible_marks_joints_outside_crop():
  size = 32
  joints = _grid_joints(size, 7.0)
  joints[0] = (-3.0, 5.0)  # already outside: stays invisible under any draw.
  batch = _batch(np.zeros((size, size, 3), np.uint8), joints, 16)
  params = dataclasses.replace(augment.GEOMETRIC_ONLY, translate=0.3)
  out = _augment(batch, jax.random.key(0), params)
  xy = np.asarray(out["joints_2d"])
  inside = np.all((xy >= 0) & (xy <= size), axis=-1)
  np.testing.assert_array_equal(np.asarray(out["visible"]), inside.astype(np.float32))
  assert 0 < inside.mean() < 1
  kept = _augment(batch, jax.random.key(0),
                         dataclasses.replace(params, invisible_outside=False))
  np.testing.assert_array_equal(np.asarray(kept["visible"]), 1.0)


def test_flip_twice_is_identity_and_swaps_labels():
  size = 40
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
  joints = rng.uniform(2, size - 2, (17, 2)).astype(np.float32)
  pose = rng.normal(0, 300, (17, 3)).astype(np.float32)
  crop = np.array([[0.5, 0.1, 3.0], [-0.1, 0.5, 7.0]], np.float32)
  batch = _batch(image, joints, 2, pose, crop)
  flip = dataclasses.replace(augment.NONE, flip_probability=1.0)
  once = _augment(batch, jax.random.key(1), flip)
  twice = _augment(once, jax.random.key(2), flip)
  as_float = np.asarray(augment.to_float_image(batch["image"]))
  np.testing.assert_array_equal(np.asarray(twice["image"]), as_float)
  for field in ("joints_2d", "visible", "pose_3d", "crop"):
    chex.assert_trees_all_close(twice[field], batch[field], atol=1e-4)
  # Measured: the mirrored image is bit-exact (pixel centres map onto pixel centres).
  np.testing.assert_array_equal(np.asarray(once["image"]), as_float[:, :, ::-1])
  # Joint k's mirror image now carries k's left/right twin's label.
  mirrored = np.stack([size - joints[:, 0], joints[:, 1]], axis=-1)
  np.testing.assert_allclose(np.asarray(once["joints_2d"][0]), mirrored[PERM], atol=1e-5)
  np.testing.assert_allclose(np.asarray(once["pose_3d"][0]),
                             (pose * [-1, 1, 1])[PERM], atol=1e-4)
  left_hip, right_hip = skeleton.H36M_17.joint_names.index("LHip"), 1
  np.testing.assert_allclose(once["joints_2d"][0, left_hip], mirrored[right_hip], atol=1e-5)


def test_identity_parameters_give_back_the_input():
  size = 48
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
  joints = rng.uniform(0, size, (17, 2)).astype(np.float32)
  batch = _batch(image, joints, 3, rng.normal(0, 300, (17, 3)), np.eye(2, 3))
  identity = augment.AugmentParams(
      translate=0.0, scale=(1.0, 1.0), rotate=0.0, flip_probability=0.0,
      hue_saturation=(0, 0), contrast=(1.0, 1.0), brightness=(1.0, 1.0))
  out = _augment(batch, jax.random.key(0), identity)
  assert out["image"].dtype == jnp.float32
  error = np.abs(np.asarray(out["image"]) - image / 255.0).max()
  # Measured 3.0e-7 (float32 HSV round trip); 10x margin. Every op ran (none is None).
  assert error < 3e-6, error
  np.testing.assert_allclose(np.asarray(out["joints_2d"][0]), joints, atol=1e-5)
  np.testing.assert_allclose(np.asarray(out["pose_3d"]), np.asarray(batch["pose_3d"]),
                             atol=1e-4)


def test_crop_affine_composes_with_the_augmentation():
  """Original-image joints mapped through the NEW crop affine equal the new joints_2d."""
  size, batch_size = 64, 8
  rng = np.random.default_rng(2)
  original = rng.uniform(300, 700, (17, 2))
  angle, scale = 0.2, 0.15
  crop = np.array([[scale * np.cos(angle), -scale * np.sin(angle), -40.0],
                   [scale * np.sin(angle), scale * np.cos(angle), -50.0]])
  joints = original @ crop[:, :2].T + crop[:, 2]
  batch = _batch(np.zeros((size, size, 3), np.uint8), joints.astype(np.float32),
                 batch_size, crop=crop)
  out = _augment(batch, jax.random.key(4), augment.GEOMETRIC_ONLY)
  new_crop = np.asarray(out["crop"], np.float64)
  mapped = np.einsum("bij,kj->bki", new_crop[:, :, :2], original) + new_crop[:, None, :, 2]
  flipped = np.abs(np.asarray(out["joints_2d"]) - mapped).max(axis=(1, 2)) > 1
  mapped[flipped] = mapped[flipped][:, PERM]  # crop maps points, not left/right labels.
  error = np.abs(np.asarray(out["joints_2d"]) - mapped).max()
  # Measured 1.3e-5 px (float32 with original coordinates ~700 px); ~10x margin.
  assert error < 2e-4, error
  assert 0 < flipped.sum() < batch_size


def _project(points, f, c):
  return points[..., :2] / points[..., 2:] * f + c


@pytest.mark.parametrize("centred", [True, False])
def test_3d_rotation_matches_the_image_rotation(centred):
  """A crop centred on the principal point: projecting the rotated/mirrored 3D (root
  offset rotated too) gives exactly the augmented 2D. Off-centre crops only approximate
  it (rotation about the optical axis vs about the crop centre), as Sun et al. accept."""
  size, f, c = 64, 1000.0, np.array([500.0, 510.0])
  rng = np.random.default_rng(3)
  root = np.array([150.0, -80.0, 4500.0])
  relative = rng.normal(0, 250, (17, 3))
  relative[0] = 0
  centre = c if centred else c + [120.0, -90.0]
  s = 0.1
  crop = np.array([[s, 0, size / 2 - s * centre[0]], [0, s, size / 2 - s * centre[1]]])
  joints = _project(root + relative, f, c) @ crop[:, :2].T + crop[:, 2]
  batch = _batch(np.zeros((size, size, 3), np.uint8), joints.astype(np.float32), 8,
                 relative, crop)
  params = dataclasses.replace(augment.NONE, rotate=30.0, flip_probability=0.5)
  keys = jax.random.split(jax.random.key(5), 8)
  out = _augment(batch, jax.random.key(5), params)
  errors = []
  for b in range(8):
    draw = augment.sample_params(keys[b], params)
    mirrored_root = root * np.where(draw["flip"], [-1, 1, 1], [1, 1, 1])
    new_root = np.asarray(augment.rotate_about_optical_axis(mirrored_root, draw["angle"]))
    absolute = np.asarray(out["pose_3d"][b], np.float64) + new_root
    reprojected = _project(absolute, f, c) @ crop[:, :2].T + crop[:, 2]
    errors.append(np.abs(reprojected - np.asarray(out["joints_2d"][b])).max())
  if centred:
    # Measured 5.0e-6 px; 10x margin. A wrong rotation sense gives tens of pixels.
    assert max(errors) < 5e-5, errors
  else:
    # Measured 26.6 px for a crop centre 150 px off the principal point (mostly the
    # flip, which mirrors about the crop centre, not about c): the documented
    # approximation is real.
    assert max(errors) > 1.0, errors


def _imgaug_contrast_uint8(image, alpha):
  """imgaug adjust_contrast_linear for uint8: 127 + alpha (v - 127), clipped, truncated."""
  table = np.clip(127 + np.float32(alpha) * (np.arange(256, dtype=np.float32) - 127), 0, 255)
  return table.astype(np.uint8)[image]


def test_contrast_and_brightness_match_imgaug_formulas():
  rng = np.random.default_rng(6)
  image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
  for alpha in (0.7, 1.3):
    ours = np.asarray(augment.linear_contrast(jnp.asarray(image / 255.0, jnp.float32), alpha))
    reference = np.clip(127 + alpha * (image.astype(np.float64) - 127), 0, 255)
    np.testing.assert_allclose(ours * 255, reference, atol=1e-4)
    # imgaug truncates to uint8: ours is within one grey level of its output.
    assert np.abs(ours * 255 - _imgaug_contrast_uint8(image, alpha)).max() < 1.0
  factors = np.array([0.5, 1.0, 1.5], np.float32)
  ours = np.asarray(augment.multiply_channels(jnp.asarray(image / 255.0, jnp.float32),
                                              factors))
  np.testing.assert_allclose(ours * 255, np.clip(image * factors, 0, 255), atol=1e-4)
  # augment draws alpha and factors per example and applies exactly these functions.
  params = dataclasses.replace(augment.NONE, contrast=(0.7, 1.3), brightness=(0.5, 1.5))
  batch = _batch(image, np.zeros((17, 2), np.float32), 2)
  out = _augment(batch, jax.random.key(7), params)
  for b, key in enumerate(jax.random.split(jax.random.key(7), 2)):
    draw = augment.sample_params(key, params)
    assert 0.7 <= draw["contrast"] <= 1.3 and np.all(np.abs(draw["brightness"] - 1) <= 0.5)
    expected = np.clip(127 + float(draw["contrast"]) * (image - 127.0), 0, 255)
    expected = np.clip(expected * np.asarray(draw["brightness"]), 0, 255)
    np.testing.assert_allclose(np.asarray(out["image"][b]) * 255, expected, atol=1e-3)


def _colorsys_hue_saturation(image, hue_value, saturation_value):
  """Independent reference with Python's colorsys, in imgaug's units."""
  out = np.empty(image.shape, np.float64)
  for index in np.ndindex(image.shape[:2]):
    h, s, v = colorsys.rgb_to_hsv(*(image[index] / 255.0))
    h = (h + int(hue_value * 180 / 255) / 180.0) % 1.0
    s = min(max(s + saturation_value / 255.0, 0.0), 1.0)
    out[index] = colorsys.hsv_to_rgb(h, s, v)
  return out


def test_hue_saturation_against_colorsys():
  rng = np.random.default_rng(8)
  image = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
  float_image = jnp.asarray(image / 255.0, jnp.float32)
  for values in ((60, 0), (-60, 0), (0, 60), (0, -60), (37, -23), (255, 0), (-255, 0)):
    ours = np.asarray(augment.add_to_hue_and_saturation(float_image, jnp.asarray(values)))
    reference = _colorsys_hue_saturation(image, *values)
    # Measured 4.3e-7; 10x margin. A hue off by one OpenCV unit (1/180 turn) gives ~0.03.
    assert np.abs(ours - reference).max() < 5e-6, (values, np.abs(ours - reference).max())
  # imgaug's +-255 is a full turn of hue: the image comes back.
  for turn in (255, -255):
    ours = augment.add_to_hue_and_saturation(float_image, jnp.asarray((turn, 0)))
    np.testing.assert_allclose(np.asarray(ours), image / 255.0, atol=5e-6)
  # A 60-unit shift really changes the colours (42 OpenCV units = 84 degrees).
  shifted = augment.add_to_hue_and_saturation(float_image, jnp.asarray((60, 0)))
  assert np.abs(np.asarray(shifted) - image / 255.0).max() > 0.3


def test_hue_saturation_sampling_follows_imgaug():
  """Integers in [lo, hi]; one value for hue and saturation unless per_channel."""
  params = dataclasses.replace(augment.NONE, hue_saturation=(-60, 60))
  draws = jax.jit(jax.vmap(lambda k: augment.sample_params(k, params)["hue_saturation"]))(
      jax.random.split(jax.random.key(0), 2000))
  assert draws.dtype == jnp.int32
  assert int(draws.min()) == -60 and int(draws.max()) == 60
  np.testing.assert_array_equal(draws[:, 0], draws[:, 1])
  per_channel = dataclasses.replace(params, hue_saturation_per_channel=True)
  draws = jax.jit(jax.vmap(lambda k: augment.sample_params(k, per_channel)["hue_saturation"]))(
      jax.random.split(jax.random.key(0), 100))
  assert np.mean(np.asarray(draws[:, 0] != draws[:, 1])) > 0.9


def test_silhouette_and_parts_move_with_the_image():
  size = 32
  image = np.zeros((size, size, 3), np.uint8)
  image[4:12, 2:9] = 255
  parts = np.zeros((size, size), np.int32)
  parts[4:12, 2:9] = 2
  batch = _batch(image, np.full((17, 2), 16.0, np.float32), 2)
  batch["silhouette"] = jnp.asarray(np.broadcast_to(image[..., 0] / 255.0, (2, size, size)))
  batch["parts"] = jnp.asarray(np.broadcast_to(parts, (2, size, size)))
  flip = dataclasses.replace(augment.NONE, flip_probability=1.0)
  with pytest.raises(ValueError, match="part_flip_permutation"):
    _augment(batch, jax.random.key(0), flip)
  out = _augment(batch, jax.random.key(0), flip, part_flip_permutation=(0, 3, 1, 2))
  np.testing.assert_array_equal(np.asarray(out["silhouette"][0]), image[:, ::-1, 0] / 255.0)
  np.testing.assert_array_equal(np.asarray(out["parts"][0]), np.where(parts, 1, 0)[:, ::-1])


def test_bad_input_names_the_field():
  batch = _batch(np.zeros((8, 8, 3), np.uint8), np.zeros((17, 2), np.float32), 1)
  with pytest.raises(ValueError, match="joints_2d"):
    _augment({**batch, "joints_2d": jnp.zeros((1, 16, 2))}, jax.random.key(0))
  with pytest.raises(ValueError, match="'image'"):
    _augment({**batch, "image": jnp.zeros((1, 8, 6, 3))}, jax.random.key(0))
  with pytest.raises(ValueError, match="visible"):
    _augment({k: v for k, v in batch.items() if k != "visible"}, jax.random.key(0))
  with pytest.raises(ValueError, match="no 'image'"):
    _augment({"joints_2d": batch["joints_2d"]}, jax.random.key(0))


def test_params_from_a_config_and_bad_ranges():
  params = augment.AugmentParams(scale=[0.8, 1.2], contrast=[0.9, 1.1])  # config lists
  assert params.scale == (0.8, 1.2) and hash(params) is not None
  with pytest.raises(ValueError, match="scale"):
    augment.AugmentParams(scale=(1.2, 0.8))
  with pytest.raises(ValueError, match="hue_saturation"):
    augment.AugmentParams(hue_saturation=(-300, 60))
  with pytest.raises(ValueError, match="flip_probability"):
    augment.AugmentParams(flip_probability=2.0)


def test_sun_2018_draws_as_integral_human_pose_does():
  """SUN_2018 against integral-human-pose's do_augmentation (scale_factor 0.25,
  rot_factor 30, rot_aug_rate 0.6, flip 0.5, color_factor 0.2), on 20,000 draws: no
  shift; one isotropic window scale s = 1 + 0.25 clip(N, -1, 1) (content 1 / s); no
  rotation 40% of the time, else 30 clip(N, -2, 2) degrees; per-channel U(0.8, 1.2)."""
  n = 20_000
  draws = jax.vmap(lambda k: augment.sample_params(k, augment.SUN_2018))(
      jax.random.split(jax.random.key(26), n))
  draws = {k: np.asarray(v) for k, v in draws.items()}
  np.testing.assert_array_equal(draws["translate"], 0.0)
  np.testing.assert_array_equal(draws["scale"][:, 0], draws["scale"][:, 1])
  window = 1.0 / draws["scale"][:, 0]
  assert window.min() >= 0.75 - 1e-6 and window.max() <= 1.25 + 1e-6
  # clip(N, -1, 1) sits on a bound with probability 2 (1 - Phi(1)) = 0.317.
  assert abs(np.mean(np.abs(window - 1.0) > 0.25 - 1e-5) - 0.317) < 0.015
  degrees = np.rad2deg(draws["angle"])
  rotated = degrees != 0.0
  assert abs(rotated.mean() - 0.6) < 0.015
  assert np.abs(degrees).max() <= 60.0 + 1e-4
  # clip(N, -2, 2): 4.55% on a bound; std 30 x 0.939 = 28.2 degrees.
  assert abs(np.mean(np.abs(degrees[rotated]) > 60.0 - 1e-3) - 0.0455) < 0.008
  reference = 30.0 * np.clip(np.random.default_rng(0).normal(size=10**6), -2, 2)
  assert abs(degrees[rotated].std() - reference.std()) < 0.6
  assert abs(draws["flip"].mean() - 0.5) < 0.015
  assert draws["brightness"].min() >= 0.8 and draws["brightness"].max() <= 1.2
  np.testing.assert_array_equal(draws["hue_saturation"], 0)
  np.testing.assert_array_equal(draws["contrast"], 1.0)


def test_sun_2018_depth_target_follows_the_zoom():
  """Sun et al.'s labels divide the root-relative depth by the window scale s: the
  augmented pose_3d is the input's times the content zoom 1 / s (rotation about the
  optical axis leaves z alone)."""
  size, depth = 32, 250.0
  batch = _batch(np.zeros((size, size, 3), np.uint8), _grid_joints(size, 4.0), 8,
                 pose_3d=np.full((17, 3), depth, np.float32))
  key = jax.random.key(3)
  out = _augment(batch, key, augment.SUN_2018)
  zoom = jax.vmap(lambda k: augment.sample_params(k, augment.SUN_2018)["scale"][0])(
      jax.random.split(key, 8))
  np.testing.assert_allclose(np.asarray(out["pose_3d"])[..., 2],
                             depth * np.asarray(zoom)[:, None] * np.ones((8, 17)), rtol=1e-5)
  assert np.ptp(np.asarray(zoom)) > 0.01  # the draws do zoom
