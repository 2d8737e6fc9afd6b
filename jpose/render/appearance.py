"""Random looks for the mannequin: clothing and skin colours, light, cloth patterns, and a
procedural background of gradients, wave noise and clutter shapes.

One `Appearance` is drawn per sequence (`sample_appearance(fold_in(key, sequence))`) so
a video stays coherent. The background is a function of the normalised image
coordinates (x - c) / f, i.e. of the ray direction, so it stays put behind a moving
person as a static camera's background does, whatever crop is rendered. Clutter colours
are drawn from the same distributions as the person's, so colour alone does not
separate person from background.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

# Garment slots of `Appearance.colours`.
TOP, BOTTOM, SKIN, HAIR, SHOES = range(5)
NUM_WAVES = 6  # sinusoids per colour channel of the background noise.
NUM_SHAPES = 24  # clutter shapes in the background.
MAX_SHAPES_IN_CROP = 8  # of which at most this many are painted into one crop.
BAND_HALF_WIDTH = 0.3  # bands: infinitely long, this share of their size across.
DISC, RECTANGLE, STRIPED, BAND = range(4)  # clutter kinds.
# Where the clutter lies, in normalised image coordinates: Human3.6M's images span about
# +-0.45 (1000 px over a 1145 px focal length); a little more covers the crop margins.
SCENE_HALF_WIDTH = 0.75

# numpy, not jnp: a jnp constant would start JAX's backend at import, before a
# multi-process run can call jax.distributed.initialize().
_SKIN_LIGHT = np.array([0.96, 0.80, 0.69], np.float32)
_SKIN_DARK = np.array([0.30, 0.19, 0.13], np.float32)
_HAIR = np.array([[0.05, 0.04, 0.03], [0.25, 0.15, 0.08], [0.55, 0.40, 0.20],
                  [0.85, 0.75, 0.50], [0.50, 0.50, 0.50]], np.float32)


class Appearance(NamedTuple):
  """How one sequence looks (a pytree: vmap `sample_appearance` over keys for a batch)."""

  colours: jnp.ndarray  # (5, 3) RGB in [0, 1]: top, bottom, skin, hair, shoes
  long_sleeves: jnp.ndarray  # () 1.0: forearms wear the top's colour, 0.0: bare skin
  shorts: jnp.ndarray  # () 1.0: shins are bare skin
  girth: jnp.ndarray  # () multiplies every body radius (build)
  light: jnp.ndarray  # (3,) unit vector towards the light, camera frame
  ambient: jnp.ndarray  # () share of ambient light in [0, 1]
  cloth_pattern: jnp.ndarray  # (2, 4) top/bottom: stripe freq (1/mm), check freq, amp, phase
  background: jnp.ndarray  # (2, 3) gradient end colours
  gradient: jnp.ndarray  # (3,) gradient direction x, y (normalised coords) and offset
  waves: jnp.ndarray  # (NUM_WAVES, 4) kx, ky (cycles per normalised unit), phase, amplitude
  wave_tint: jnp.ndarray  # (NUM_WAVES, 3) each wave's weight per colour channel
  shape_kind: jnp.ndarray  # (NUM_SHAPES,) int32, DISC / RECTANGLE / STRIPED / BAND
  shape_centre: jnp.ndarray  # (NUM_SHAPES, 2) normalised image coordinates
  shape_size: jnp.ndarray  # (NUM_SHAPES, 2) half extents, normalised units
  shape_angle: jnp.ndarray  # (NUM_SHAPES,) radians
  shape_colour: jnp.ndarray  # (NUM_SHAPES, 3)


def _hsv_to_rgb(hsv):
  """(..., 3) HSV in [0, 1] -> (..., 3) RGB."""
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  k = jnp.mod(jnp.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0, 6.0)
  return v[..., None] - v[..., None] * s[..., None] * jnp.clip(
      jnp.minimum(k, 4.0 - k), 0.0, 1.0)


class _Uniforms:
  """Hands out consecutive slices of ONE draw of uniform numbers: a few dozen separate
  jax.random calls made this function take ~10 s to compile on CPU."""

  def __init__(self, key, total: int = 768):
    self.values, self.used = jax.random.uniform(key, (total,)), 0

  def __call__(self, shape=(), low: float = 0.0, high: float = 1.0):
    n = int(np.prod(shape))
    if self.used + n > self.values.shape[0]:
      raise ValueError(f"_Uniforms: {self.used + n} numbers asked of {self.values.shape[0]}")
    out = self.values[self.used:self.used + n].reshape(shape)
    self.used += n
    return low + (high - low) * out

  def index(self, shape, n: int):
    """Uniform integers in [0, n)."""
    return jnp.minimum(jnp.floor(self(shape) * n), n - 1).astype(jnp.int32)


def _clothing_colours(draw: _Uniforms, shape):
  """Garment-like colours: any hue, from greys to saturated, dark to light."""
  hsv = jnp.stack([draw(shape), draw(shape) ** 1.5 * 0.9, draw(shape, 0.12, 0.95)], axis=-1)
  return _hsv_to_rgb(hsv)


def _skin_colours(draw: _Uniforms, shape):
  tone = draw(shape + (1,))
  jitter = draw(shape + (3,), -0.04, 0.04)
  return jnp.clip(_SKIN_LIGHT + tone * (_SKIN_DARK - _SKIN_LIGHT) + jitter, 0.0, 1.0)


def sample_appearance(key) -> Appearance:
  """A random look for one sequence; deterministic given the key."""
  draw = _Uniforms(key)
  clothes = _clothing_colours(draw, (3,))  # top, bottom, shoes
  skin = _skin_colours(draw, ())
  hair = jnp.asarray(_HAIR)[draw.index((), _HAIR.shape[0])]
  colours = jnp.stack([clothes[0], clothes[1], skin, hair, clothes[2] * 0.6])
  # Light from the camera's side of the scene, up to ~70 degrees off the view axis.
  light_angle, light_tilt = draw((), 0.0, 2 * jnp.pi), draw((), 0.0, 2.5)
  light = jnp.stack([light_tilt * jnp.cos(light_angle), light_tilt * jnp.sin(light_angle), -1.0])
  light = light / jnp.sqrt(jnp.sum(light * light))
  pattern_amp = draw((2, 2), 0.0, 0.25) * (draw((2, 2)) < 0.5)
  cloth_pattern = jnp.concatenate([
      draw((2, 2), 1 / 120.0, 1 / 25.0), jnp.max(pattern_amp, axis=1, keepdims=True),
      draw((2, 1), 0.0, 2 * jnp.pi)], axis=1)
  cloth_pattern = cloth_pattern.at[:, 1].multiply(pattern_amp[:, 1] > pattern_amp[:, 0])

  # Background: colours from the person's own distributions (clothes and skin) half the time.
  def person_like(shape):
    own = colours[jnp.array([TOP, BOTTOM, SKIN, SKIN])[draw.index(shape, 4)]]
    own = jnp.clip(own + draw(shape + (3,), -0.08, 0.08), 0.0, 1.0)
    mixed = jnp.where(draw(shape + (1,)) < 0.5, _skin_colours(draw, shape),
                      _clothing_colours(draw, shape))
    return jnp.where(draw(shape + (1,)) < 0.45, own, mixed)

  background = person_like((2,))
  angle, steepness = draw((), 0.0, 2 * jnp.pi), draw((), 0.3, 1.5)
  gradient = jnp.stack([steepness * jnp.cos(angle), steepness * jnp.sin(angle), 0.5])
  freq, direction = draw((NUM_WAVES,), 1.0, 15.0), draw((NUM_WAVES,), 0.0, 2 * jnp.pi)
  waves = jnp.stack([freq * jnp.cos(direction), freq * jnp.sin(direction),
                     draw((NUM_WAVES,), 0.0, 2 * jnp.pi),
                     draw((NUM_WAVES,), 0.0, 0.15) / jnp.sqrt(freq / 3.0)], axis=-1)
  # Mostly brightness, some colour: real texture varies more in light than in hue.
  wave_tint = 1.0 + draw((NUM_WAVES, 3), -0.5, 0.5)
  size = draw((NUM_SHAPES, 2), 0.01, 0.12) * (1.0 + 2.0 * (draw((NUM_SHAPES, 1)) < 0.2))
  return Appearance(
      colours=colours,
      long_sleeves=(draw() < 0.5).astype(jnp.float32),
      shorts=(draw() < 0.25).astype(jnp.float32),
      girth=draw((), 0.85, 1.2),
      light=light,
      ambient=draw((), 0.25, 0.6),
      cloth_pattern=cloth_pattern,
      background=background,
      gradient=gradient,
      waves=waves,
      wave_tint=wave_tint,
      shape_kind=draw.index((NUM_SHAPES,), 4),
      shape_centre=draw((NUM_SHAPES, 2), -SCENE_HALF_WIDTH, SCENE_HALF_WIDTH),
      shape_size=size,
      shape_angle=draw((NUM_SHAPES,), 0.0, jnp.pi),
      shape_colour=person_like((NUM_SHAPES,)),
  )


def background_image(appearance: Appearance, rays_xy, noise_stride: int = 4):
  """(S, S, 2) normalised image coordinates of a crop's pixels -> (S, S, 3) background
  RGB in [0, 1].

  The smooth wave noise is evaluated every `noise_stride` pixels and upsampled
  bilinearly (it has no detail finer than that), and only the MAX_SHAPES_IN_CROP
  clutter shapes that reach the crop are painted, the last-painted first kept.
  """
  a = appearance
  size = rays_xy.shape[0]
  along = rays_xy[..., 0] * a.gradient[0] + rays_xy[..., 1] * a.gradient[1] + a.gradient[2]
  rgb = a.background[0] + jnp.clip(along, 0.0, 1.0)[..., None] * (a.background[1] - a.background[0])
  coarse = rays_xy[noise_stride // 2::noise_stride, noise_stride // 2::noise_stride]
  phase = (coarse @ a.waves[:, :2].T) * (2 * jnp.pi) + a.waves[:, 2]
  noise = (a.waves[:, 3] * jnp.sin(phase)) @ a.wave_tint
  rgb = rgb + jax.image.resize(noise, (size, size, 3), "linear")

  # Which shapes reach the crop: a bounding circle around the crop against each shape's
  # bounding circle (bands: their distance from the crop centre across the band).
  centre = rays_xy[size // 2, size // 2]
  corners = rays_xy[jnp.array([0, 0, -1, -1]), jnp.array([0, -1, 0, -1])]
  crop_radius = jnp.max(jnp.linalg.norm(corners - centre, axis=-1))
  offset = centre - a.shape_centre
  across = -jnp.sin(a.shape_angle) * offset[:, 0] + jnp.cos(a.shape_angle) * offset[:, 1]
  reach = jnp.where(a.shape_kind == BAND, jnp.abs(across) - BAND_HALF_WIDTH * a.shape_size[:, 1],
                    jnp.linalg.norm(offset, axis=-1) - jnp.linalg.norm(a.shape_size, axis=-1))
  order = jnp.arange(NUM_SHAPES)
  _, chosen = jax.lax.top_k(jnp.where(reach <= crop_radius, order + NUM_SHAPES, order),
                            MAX_SHAPES_IN_CROP)
  # Which chosen shape is on top at each pixel, and its shading, as (S, S) maps: painted
  # per colour channel instead, XLA's CPU fusion would test every shape three times.
  chosen = jnp.sort(chosen)
  top, shade = jnp.full((size, size), -1, jnp.int32), jnp.ones((size, size))
  for slot in range(MAX_SHAPES_IN_CROP):  # painter's order: later shapes cover earlier ones.
    n = chosen[slot]
    offset = rays_xy - a.shape_centre[n]
    cos, sin = jnp.cos(a.shape_angle[n]), jnp.sin(a.shape_angle[n])
    x = (cos * offset[..., 0] + sin * offset[..., 1]) / a.shape_size[n, 0]
    y = (-sin * offset[..., 0] + cos * offset[..., 1]) / a.shape_size[n, 1]
    box = (jnp.abs(x) <= 1.0) & (jnp.abs(y) <= 1.0)
    kind = a.shape_kind[n]
    inside = jnp.where(kind == DISC, x * x + y * y <= 1.0,
                       jnp.where(kind == BAND, jnp.abs(y) <= BAND_HALF_WIDTH,
                                 box & ((kind == RECTANGLE) | (jnp.floor(2.0 * y) % 2 == 0))))
    inside = inside & (reach[n] <= crop_radius)
    top = jnp.where(inside, n, top)
    # A soft shading gradient across each shape, so shapes are not flat colour either.
    shade = jnp.where(inside, 1.0 + 0.15 * jnp.clip(x, -1.0, 1.0), shade)
  top, shade = jax.lax.optimization_barrier((top, shade))
  rgb = jnp.where((top >= 0)[..., None], a.shape_colour[jnp.maximum(top, 0)] * shade[..., None],
                  rgb)
  return jnp.clip(rgb, 0.0, 1.0)
