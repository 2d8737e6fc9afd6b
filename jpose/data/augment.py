"""Image augmentation on the device: one random affine plus colour jitter per example.

`augment(batch, key, params)` runs inside the jitted train step over the image batch dict
of the image conventions (image, joints_2d, visible, pose_3d, crop, ...). Two presets:

- `SEED_002` (the default `AugmentParams`): seed 002's imgaug pipeline, translate +-5 %,
  per-axis scale 0.75-1.25 drawn uniformly, rotate uniformly within +-30 deg on every
  image and horizontal flip, composed into one affine and resampled once, and
  `AddToHueAndSaturation((-60, 60))`, `LinearContrast((0.7, 1.3))` and
  `Multiply((0.5, 1.5), per_channel=True)`, in float on [0, 1] instead of uint8 (so
  without imgaug's rounding to whole grey levels after each op) and before the
  resampling (see `augment_example`). It is not Sun et al.'s: seed 002 passed imgaug
  `translate_percent=0.05`, a single number, which imgaug applies as a fixed +5 % shift
  right and down on every image, not a uniform draw within +-5 % as here.
- `SUN_2018`: Sun et al.'s own (integral-human-pose's `do_augmentation` with the yaml's
  scale_factor 0.25, rot_factor 30, color_factor 0.2): no shift; an isotropic zoom whose
  window is 1 + 0.25 clip(N(0, 1), -1, 1) times the box (the content scaled by its
  inverse, 0.8-1.33); with probability 0.6 a rotation of 30 clip(N(0, 1), -2, 2) degrees
  (sigma 30, clipped to +-60), else none; a mirror with probability 0.5; each RGB channel
  times U(0.8, 1.2); and the root-relative depth target divided by the window's scale, as
  Sun's patch labels do (z / (rect_3d_width * scale)).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import dm_pix
import jax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import affine as affine_lib
from jpose.geometry import skeleton

# imgaug's LinearContrast pivots uint8 images about int(0.5 * 255) = 127, not 127.5.
CONTRAST_CENTRE = 127.0 / 255.0


@dataclasses.dataclass(frozen=True)
class AugmentParams:
  """Ranges of every augmentation; None (or 0 for flip_probability) switches an op off.

  Frozen and hashable, so it is a static argument: switching an op off removes its code
  from the compiled step rather than multiplying by an identity.
  """

  # Shift of the crop content, uniform in +-translate x crop size, per axis. (Seed 002's
  # imgaug translate_percent=0.05 was a fixed +5 % shift; see the module docstring.)
  translate: float | None = 0.05
  # Scale factors, uniform in [lo, hi] independently for x and y (imgaug's
  # scale={"x": ..., "y": ...}); 3D targets are left alone (a zoom is not a 3D change).
  scale: tuple[float, float] | None = (0.75, 1.25)
  # In-plane rotation about the crop centre, uniform in +-rotate degrees; the
  # camera-frame 3D pose turns with it about the optical axis.
  rotate: float | None = 30.0
  # "uniform" (within +-rotate) or "gaussian" (Sun et al.: sigma = rotate, clipped to
  # +-2 rotate), drawn with probability rotate_probability (else no rotation).
  rotate_distribution: str = "uniform"
  rotate_probability: float = 1.0
  # Sun et al.'s zoom, instead of `scale` (set that to None): the sampled window is
  # s = 1 + scale_factor * clip(N(0, 1), -1, 1) times the box, the same on both axes, so
  # the content scales by 1 / s.
  scale_factor: float | None = None
  # Divide the root-relative 3D pose (the depth target) by the window scale s, as Sun et
  # al.'s labels do: the zoomed person reads as a person 1 / s times the size.
  scale_depth: bool = False
  # Probability of a horizontal mirror (with left/right joint labels swapped).
  flip_probability: float = 0.5
  # imgaug AddToHueAndSaturation value range, integers in [-255, 255]: hue moves by
  # trunc(v * 180 / 255) OpenCV hue units (of 180 per turn), saturation by v / 255.
  hue_saturation: tuple[int, int] | None = (-60, 60)
  # imgaug's per_channel for AddToHueAndSaturation: False (its default) adds the same
  # sampled value to hue and saturation, True samples one for each.
  hue_saturation_per_channel: bool = False
  # imgaug LinearContrast alpha range: x -> 127/255 + alpha (x - 127/255).
  contrast: tuple[float, float] | None = (0.7, 1.3)
  # imgaug Multiply(per_channel=True) range: each RGB channel times its own factor.
  brightness: tuple[float, float] | None = (0.5, 1.5)
  # Joints the transform pushes outside [0, S] x [0, S] get visible = 0 (their
  # coordinates are kept): a crop-pixel loss should not chase points off the image.
  invisible_outside: bool = True

  def __post_init__(self):
    # Config files hand over lists; tuples keep the params hashable (a static argument).
    for field in ("scale", "hue_saturation", "contrast", "brightness"):
      value = getattr(self, field)
      if value is None:
        continue
      value = tuple(value)
      if len(value) != 2 or not value[0] <= value[1]:
        raise ValueError(f"AugmentParams.{field} must be a (low, high) range, got {value}")
      object.__setattr__(self, field, value)
    if self.hue_saturation is not None and not -255 <= self.hue_saturation[0] <= \
        self.hue_saturation[1] <= 255:
      raise ValueError(f"AugmentParams.hue_saturation must lie in [-255, 255] (imgaug "
                       f"units), got {self.hue_saturation}")
    if not 0.0 <= self.flip_probability <= 1.0:
      raise ValueError(f"AugmentParams.flip_probability must be in [0, 1], got "
                       f"{self.flip_probability}")
    if not 0.0 <= self.rotate_probability <= 1.0:
      raise ValueError(f"AugmentParams.rotate_probability must be in [0, 1], got "
                       f"{self.rotate_probability}")
    if self.rotate_distribution not in ("uniform", "gaussian"):
      raise ValueError(f"AugmentParams.rotate_distribution must be 'uniform' or 'gaussian', "
                       f"got {self.rotate_distribution!r}")
    if self.scale is not None and self.scale_factor is not None:
      raise ValueError("AugmentParams: scale (per-axis uniform) and scale_factor (Sun et "
                       "al.'s isotropic zoom) are two ways to zoom; set one to None")
    if self.scale_factor is not None and not 0.0 <= self.scale_factor < 1.0:
      raise ValueError(f"AugmentParams.scale_factor must be in [0, 1), got {self.scale_factor}")

  @property
  def geometric(self) -> bool:
    """Whether any geometric op is on (then the image is resampled once)."""
    return (self.translate is not None or self.scale is not None
            or self.scale_factor is not None or self.rotate is not None
            or self.flip_probability > 0)


SEED_002 = AugmentParams()
NONE = AugmentParams(translate=None, scale=None, rotate=None, flip_probability=0.0,
                     hue_saturation=None, contrast=None, brightness=None)
GEOMETRIC_ONLY = dataclasses.replace(SEED_002, hue_saturation=None, contrast=None,
                                     brightness=None)
SUN_2018 = AugmentParams(translate=None, scale=None, scale_factor=0.25, scale_depth=True,
                         rotate=30.0, rotate_distribution="gaussian", rotate_probability=0.6,
                         flip_probability=0.5, hue_saturation=None, contrast=None,
                         brightness=(0.8, 1.2))


def sample_params(key, params: AugmentParams) -> dict[str, jnp.ndarray]:
  """Draws one example's augmentation: scale (2,), translate (2,) as a fraction of the
  crop, angle (radians), flip (bool), hue/saturation shifts (imgaug integer units, (2,)),
  contrast alpha and brightness factors (3,). Switched-off ops draw their identity."""
  keys = dict(zip(("scale", "translate", "angle", "flip", "hue_saturation", "contrast",
                   "brightness"), jax.random.split(key, 7)))
  out: dict[str, jnp.ndarray] = {}
  if params.scale is not None:
    out["scale"] = jax.random.uniform(keys["scale"], (2,), minval=params.scale[0],
                                      maxval=params.scale[1])
  elif params.scale_factor is not None:  # Sun et al.: the window's scale s, content 1 / s.
    window = 1.0 + params.scale_factor * jnp.clip(jax.random.normal(keys["scale"], ()), -1, 1)
    out["scale"] = jnp.full((2,), 1.0 / window)
  else:
    out["scale"] = jnp.ones((2,))
  if params.translate is not None:
    out["translate"] = jax.random.uniform(keys["translate"], (2,), minval=-params.translate,
                                          maxval=params.translate)
  else:
    out["translate"] = jnp.zeros((2,))
  if params.rotate is not None:
    k_angle, k_apply = jax.random.split(keys["angle"])
    if params.rotate_distribution == "gaussian":
      degrees = params.rotate * jnp.clip(jax.random.normal(k_angle, ()), -2.0, 2.0)
    else:
      degrees = jax.random.uniform(k_angle, (), minval=-params.rotate, maxval=params.rotate)
    if params.rotate_probability < 1.0:
      degrees = jnp.where(jax.random.uniform(k_apply, ()) < params.rotate_probability,
                          degrees, 0.0)
    out["angle"] = jnp.deg2rad(degrees)
  else:
    out["angle"] = jnp.zeros(())
  out["flip"] = jax.random.bernoulli(keys["flip"], params.flip_probability)
  if params.hue_saturation is not None:
    lo, hi = params.hue_saturation
    # imgaug samples a discrete uniform over [lo, hi], both ends included.
    values = jax.random.randint(keys["hue_saturation"], (2,), lo, hi + 1)
    if not params.hue_saturation_per_channel:
      values = jnp.stack([values[0], values[0]])
    out["hue_saturation"] = values
  else:
    out["hue_saturation"] = jnp.zeros((2,), jnp.int32)
  if params.contrast is not None:
    out["contrast"] = jax.random.uniform(keys["contrast"], (), minval=params.contrast[0],
                                         maxval=params.contrast[1])
  else:
    out["contrast"] = jnp.ones(())
  if params.brightness is not None:
    out["brightness"] = jax.random.uniform(keys["brightness"], (3,),
                                           minval=params.brightness[0],
                                           maxval=params.brightness[1])
  else:
    out["brightness"] = jnp.ones((3,))
  return out


def crop_transform(size: int, scale, translate, angle, flip):
  """(3, 3) affine on crop pixels: mirror x (if flip), scale per axis, rotate by angle
  (x right, y down, so a positive angle turns x towards y), shift by translate x size;
  all about the crop centre (size / 2, size / 2) in continuous pixel coordinates."""
  centre = size / 2.0
  mirror = jnp.where(flip, -1.0, 1.0)
  c, s = jnp.cos(angle), jnp.sin(angle)
  rotation = jnp.array([[c, -s], [s, c]])
  linear = rotation * scale[None, :] * jnp.array([mirror, 1.0])[None, :]
  offset = centre + translate * size - linear @ jnp.array([centre, centre])
  return jnp.concatenate([
      jnp.concatenate([linear, offset[:, None]], axis=1),
      jnp.array([[0.0, 0.0, 1.0]])], axis=0)


def warp(image, matrix, nearest: bool = False):
  """Resamples an (H, W, C) or (H, W) image so that out(p) = image(matrix^-1 p) for a
  (3, 3) forward affine on continuous pixel coordinates (pixel centres at j + 0.5).

  Bilinear with zero outside the image (cv2.warpAffine's BORDER_CONSTANT, which imgaug
  uses), or nearest for label maps. Not `dm_pix.affine_transform`: it interpolates in 3-D
  over the channel axis too (8 gathers per value) and measured 14 images/s against this
  function's 745 at 256x256, batch 32, on the 2-core CPU.
  """
  height, width = image.shape[:2]
  flat = image.reshape((height * width, -1))
  inverse = affine_lib.invert_affine(matrix)
  x = jnp.arange(width, dtype=jnp.float32)[None, :] + 0.5
  y = jnp.arange(height, dtype=jnp.float32)[:, None] + 0.5
  # Sample positions in index units (pixel centre j + 0.5 is index j).
  sx = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2] - 0.5
  sy = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2] - 0.5

  def tap(rows, cols):
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    values = flat[jnp.clip(rows, 0, height - 1) * width + jnp.clip(cols, 0, width - 1)]
    return jnp.where(inside[..., None], values, jnp.zeros((), flat.dtype))

  if nearest:
    out = tap(jnp.round(sy).astype(jnp.int32), jnp.round(sx).astype(jnp.int32))
  else:
    x0, y0 = jnp.floor(sx), jnp.floor(sy)
    wx, wy = (sx - x0)[..., None], (sy - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    out = ((1 - wy) * ((1 - wx) * tap(y0, x0) + wx * tap(y0, x0 + 1))
           + wy * ((1 - wx) * tap(y0 + 1, x0) + wx * tap(y0 + 1, x0 + 1)))
  return out.reshape(image.shape)


def add_to_hue_and_saturation(image, values):
  """imgaug AddToHueAndSaturation on a float (H, W, 3) RGB image in [0, 1].

  values: (2,) int imgaug units in [-255, 255] for hue and saturation. imgaug projects the
  hue value to OpenCV's 180-per-turn hue with trunc(v / 255 * 180) and adds modulo 180,
  so v = +-255 is a full turn; saturation adds v to OpenCV's 0-255 S and clips.
  """
  hue_units = jnp.trunc(values[0].astype(jnp.float32) * (180.0 / 255.0))
  hsv = dm_pix.rgb_to_hsv(image)
  hue = (hsv[..., 0] + hue_units / 180.0) % 1.0
  saturation = jnp.clip(hsv[..., 1] + values[1].astype(jnp.float32) / 255.0, 0.0, 1.0)
  return dm_pix.hsv_to_rgb(jnp.stack([hue, saturation, hsv[..., 2]], axis=-1))


def linear_contrast(image, alpha):
  """imgaug LinearContrast on [0, 1] floats: 127/255 + alpha (x - 127/255), clipped."""
  return jnp.clip(CONTRAST_CENTRE + alpha * (image - CONTRAST_CENTRE), 0.0, 1.0)


def multiply_channels(image, factors):
  """imgaug Multiply(per_channel=True): (H, W, 3) times (3,) factors, clipped to [0, 1]."""
  return jnp.clip(image * factors, 0.0, 1.0)


def rotate_about_optical_axis(points, angle):
  """Rotates (..., 3) camera-frame points by `angle` about the camera's z axis, the same
  turn (x towards y) that `crop_transform` gives image points about the crop centre."""
  c, s = jnp.cos(angle), jnp.sin(angle)
  x, y = points[..., 0], points[..., 1]
  return jnp.stack([c * x - s * y, s * x + c * y, points[..., 2]], axis=-1)


def to_float_image(image):
  """uint8 [0, 255] or float [0, 1] -> float32 [0, 1]."""
  if image.dtype == jnp.uint8:
    return image.astype(jnp.float32) / 255.0
  return image.astype(jnp.float32)


def augment_example(example: dict[str, Any], key, params: AugmentParams = SEED_002,
                    part_flip_permutation: Sequence[int] | None = None
                    ) -> dict[str, jnp.ndarray]:
  """Augments one example (the batch dict without its batch axis); see `augment`."""
  _check_example(example)
  image = to_float_image(example["image"])
  size = image.shape[0]
  draw = sample_params(key, params)
  out = dict(example)
  # Colour before geometry: the per-pixel colour ops commute with the resampling except
  # for bilinear mixing of clipped values and the black fill outside the source (which
  # stays black instead of taking LinearContrast's grey 127 (1 - alpha) / 255). The other
  # order left XLA's CPU fusion materialising the four bilinear taps one by one: 71
  # against 350 images/s at 256x256, batch 32.
  if params.hue_saturation is not None:
    image = add_to_hue_and_saturation(image, draw["hue_saturation"])
  if params.contrast is not None:
    image = linear_contrast(image, draw["contrast"])
  if params.brightness is not None:
    image = multiply_channels(image, draw["brightness"])
  if params.geometric:
    matrix = crop_transform(size, draw["scale"], draw["translate"], draw["angle"],
                            draw["flip"])
    image = warp(image, matrix)
    flip = draw["flip"]
    # The affine mirrored the pixels; the labels swap here.
    joints = affine_lib.apply_affine(matrix, example["joints_2d"])
    out["joints_2d"] = jnp.where(flip, skeleton.flip_left_right(joints), joints)
    visible = jnp.where(flip, example["visible"][skeleton.H36M_17.flip_permutation],
                        example["visible"])
    if params.invisible_outside:
      joints = out["joints_2d"]
      inside = jnp.all((joints >= 0) & (joints <= size), axis=-1)
      visible = visible * inside.astype(visible.dtype)
    out["visible"] = visible
    if "pose_3d" in example:
      pose = example["pose_3d"]
      # Mirror first, then turn: crop_transform applies its mirror before the rotation.
      pose = skeleton.mirror(pose, where=flip)
      if params.scale_depth:  # the content's zoom 1 / s (isotropic), as Sun's z / s.
        pose = pose * draw["scale"][0]
      out["pose_3d"] = rotate_about_optical_axis(pose, draw["angle"])
    if "crop" in example:
      out["crop"] = (matrix @ jnp.concatenate(
          [example["crop"], jnp.array([[0.0, 0.0, 1.0]])], axis=0))[:2]
    if "silhouette" in example:
      out["silhouette"] = warp(example["silhouette"].astype(jnp.float32), matrix)
    if "parts" in example:
      if part_flip_permutation is None and params.flip_probability > 0:
        raise ValueError("batch has 'parts' and flips are on: pass part_flip_permutation "
                         "(label k -> its mirror label) so left/right parts swap")
      parts = warp(example["parts"], matrix, nearest=True)
      if part_flip_permutation is not None:
        parts = jnp.where(flip, jnp.asarray(part_flip_permutation)[parts], parts)
      out["parts"] = parts
  out["image"] = image
  return out


def augment(batch: dict[str, Any], key, params: AugmentParams = SEED_002,
            part_flip_permutation: Sequence[int] | None = None) -> dict[str, jnp.ndarray]:
  """Augments a batch dict (image (B, S, S, 3) uint8 or float [0, 1], joints_2d (B, 17, 2),
  visible (B, 17), optional pose_3d (B, 17, 3), crop (B, 2, 3), silhouette (B, S, S),
  parts (B, S, S)); other keys pass through. Each example draws its own parameters from
  `key`. Returns float32 images in [0, 1].

  Geometry: one affine (mirror, per-axis scale, rotation, shift about the crop centre)
  resamples the image once and moves joints_2d with it; crop becomes affine @ crop, so
  original pixels still map to the new crop pixels; flips swap left/right joints
  (`skeleton.H36M_17.flip_permutation`) and mirror pose_3d's x; the rotation turns
  pose_3d about the camera's optical axis (Sun et al. 2018) - exactly consistent with the
  image only where the crop centre is the principal point (documented in the tests).
  Colour: hue/saturation, linear contrast, per-channel multiply, each clipped to [0, 1],
  applied before the resampling (see `augment_example` for why).
  """
  if "image" not in batch:
    raise ValueError(f"augment: batch has no 'image' (keys: {sorted(batch)})")
  keys = jax.random.split(key, batch["image"].shape[0])
  return jax.vmap(functools.partial(augment_example, params=params,
                                    part_flip_permutation=part_flip_permutation))(batch, keys)


def _check_example(example) -> None:
  image = example["image"]
  if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape[2] != 3:
    raise ValueError(f"augment: 'image' must be (B, S, S, 3), got per-example shape "
                     f"{image.shape}")
  num_joints = skeleton.H36M_17.num_joints
  for field, shape in (("joints_2d", (num_joints, 2)), ("visible", (num_joints,)),
                       ("pose_3d", (num_joints, 3)), ("crop", (2, 3))):
    if field in example and tuple(example[field].shape) != shape:
      raise ValueError(f"augment: '{field}' must be (B, {', '.join(map(str, shape))}), "
                       f"got per-example shape {tuple(example[field].shape)}")
  for field in ("joints_2d", "visible"):
    if field not in example:
      raise ValueError(f"augment: batch has no '{field}'")
