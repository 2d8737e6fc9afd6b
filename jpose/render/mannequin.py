"""A capsule mannequin ray-caster: 17 Human3.6M joints -> RGB image, silhouette, part map.

The body is a capsule per bone of `skeleton.H36M_17` with human radii, plus two torso
flanks, a head, hands and feet. Every crop pixel casts a ray from the camera centre and
meets every capsule analytically (an infinite cylinder clipped to the segment, and the
two end spheres); the nearest hit wins, so self-occlusion is exact. The winner is shaded
Lambert + ambient with its analytic normal. Rays are cast through the crop's affine, so
the image is rendered directly at the crop (`render_crop`).

Everything is pure jnp for one example; vmap it over a batch and jit it. Depth is solved
in the camera's z (rays (x, y, 1)), so a hit's parameter is its camera-frame depth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import affine as affine_lib
from jpose.geometry import skeleton
from jpose.render import appearance as appearance_lib
from jpose.render import crop as crop_lib

_J = {name: i for i, name in enumerate(skeleton.H36M_17.joint_names)}
_BONES = skeleton.H36M_17.bones
# Radius (mm) of the capsule of each bone, keyed by the bone's child joint: thighs thicker
# than shins, upper arms thicker than forearms, a wide pelvis and chest, a thin neck.
_BONE_RADIUS = {"RHip": 95.0, "RKnee": 72.0, "RFoot": 50.0, "LHip": 95.0, "LKnee": 72.0,
                "LFoot": 50.0, "Spine": 112.0, "Thorax": 112.0, "Neck/Nose": 50.0,
                "Head": 62.0, "LShoulder": 60.0, "LElbow": 46.0, "LWrist": 37.0,
                "RShoulder": 60.0, "RElbow": 46.0, "RWrist": 37.0}
EXTRA_PRIMITIVES = ("LTorso", "RTorso", "HeadBall", "LHand", "RHand", "LSole", "RSole")
# Part names, in the order of the part map's labels 1, 2, ... (0 is background): first
# the bones of H36M_17 (named parent-child), then the extra volumes.
PART_NAMES = tuple(f"{skeleton.H36M_17.joint_names[p]}-{skeleton.H36M_17.joint_names[c]}"
                   for p, c in _BONES) + EXTRA_PRIMITIVES
NUM_PRIMITIVES = len(PART_NAMES)
HEAD_BALL = len(_BONES) + EXTRA_PRIMITIVES.index("HeadBall")
# Culling: the crop is cut into TILES_PER_SIDE^2 tiles, and each tile's rays meet at most
# PRIMITIVES_PER_TILE primitives (the nearest of those whose boxes reach it). Up to 15
# reach one tile on real Human3.6M poses; against the unculled ray test over 128 real
# frames at 128 px, 8 leaves 0.016% of silhouette pixels out on average (0.3% in the
# worst frame), 12 none, at a third more render time.
TILES_PER_SIDE = 16
PRIMITIVES_PER_TILE = 8
assert PRIMITIVES_PER_TILE <= 32  # slots are packed into 5 bits (see `render`).

_T, _B, _S = appearance_lib.TOP, appearance_lib.BOTTOM, appearance_lib.SKIN
# Garment of each primitive with long sleeves and long trousers; forearms and shins
# switch to skin per appearance (see `_garments`).
_GARMENT = np.array(
    [{"RHip": _B, "RKnee": _B, "RFoot": _B, "LHip": _B, "LKnee": _B, "LFoot": _B,
      "Spine": _T, "Thorax": _T, "Neck/Nose": _S, "Head": _S, "LShoulder": _T,
      "LElbow": _T, "LWrist": _T, "RShoulder": _T, "RElbow": _T, "RWrist": _T}[
          skeleton.H36M_17.joint_names[c]] for _, c in _BONES]
    + [_T, _T, _S, _S, _S, appearance_lib.SHOES, appearance_lib.SHOES], np.int32)
# Primitives that span the waist: their hits take the top's colour above WAIST (a share
# of the pelvis-to-thorax height) and the bottom's below it.
_TORSO = np.array([i for i, (_, c) in enumerate(_BONES)
                   if skeleton.H36M_17.joint_names[c] in ("RHip", "LHip", "Spine")]
                  + [len(_BONES) + EXTRA_PRIMITIVES.index(n) for n in ("LTorso", "RTorso")])
WAIST = 0.22
_FOREARMS = np.array([i for i, (_, c) in enumerate(_BONES)
                      if skeleton.H36M_17.joint_names[c] in ("LWrist", "RWrist")])
_SHINS = np.array([i for i, (_, c) in enumerate(_BONES)
                   if skeleton.H36M_17.joint_names[c] in ("LFoot", "RFoot")])


def _dot(a, b):
  """(..., 3) . (..., 3) -> (...), written out: XLA's CPU backend hands a multiply-reduce
  over a last axis of 3 to a matrix-multiply library, which is slow at that shape."""
  return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _unit(v):
  return v / jnp.maximum(jnp.sqrt(_dot(v, v)), 1e-6)[..., None]


def body_frame(joints):
  """(17, 3) camera-frame joints -> unit (3,) vectors: the body's up, left and forward."""
  up = _unit(joints[_J["Thorax"]] - joints[_J["Hip"]])
  left = _unit(joints[_J["LHip"]] - joints[_J["RHip"]])
  forward = _unit(jnp.cross(left, up))
  return up, left, forward


def body_capsules(joints, girth=1.0):
  """(17, 3) camera-frame joints (mm) -> capsules: start (K, 3), end (K, 3), radius (K,).

  K = NUM_PRIMITIVES, in PART_NAMES order. A sphere is a capsule of zero length.
  """
  j = lambda name: joints[_J[name]]
  parent = np.array([p for p, _ in _BONES])
  child = np.array([c for _, c in _BONES])
  radius = np.array([_BONE_RADIUS[skeleton.H36M_17.joint_names[c]] for c in child])
  up, _, forward = body_frame(joints)
  starts, ends, radii = [joints[parent]], [joints[child]], [jnp.asarray(radius)]

  def add(start, end, r):
    starts.append(start[None])
    ends.append(end[None])
    radii.append(jnp.array([r]))

  for side in "LR":  # torso flanks: from above the hip to inside the shoulder.
    hip = 0.45 * j("Hip") + 0.55 * j(f"{side}Hip") + 50.0 * up
    shoulder = 0.45 * j("Thorax") + 0.55 * j(f"{side}Shoulder") - 60.0 * up
    add(hip, shoulder, 85.0)
  head_axis = j("Head") - j("Neck/Nose")
  centre = j("Neck/Nose") + 0.45 * head_axis - 30.0 * forward
  add(centre - 0.2 * head_axis, centre + 0.1 * head_axis, 92.0)
  for side in "LR":  # hands continue the forearm; feet point forward from the ankle.
    wrist = j(f"{side}Wrist")
    along = _unit(wrist - j(f"{side}Elbow"))
    add(wrist + 35.0 * along, wrist + 85.0 * along, 40.0)
  for side in "LR":
    ankle = j(f"{side}Foot")
    down = _unit(ankle - j(f"{side}Knee"))
    add(ankle + 30.0 * down - 20.0 * forward, ankle + 45.0 * down + 130.0 * forward, 40.0)
  return jnp.concatenate(starts), jnp.concatenate(ends), jnp.concatenate(radii) * girth


def crop_rays(affine, focal, principal, size: int):
  """Normalised image coordinates (x - c) / f of the crop's pixel centres: (size, size, 2).

  Crop pixel centres go through the affine's inverse to original pixels, then through
  the intrinsics: the crop camera, for any crop affine.
  """
  centres = jnp.arange(size, dtype=jnp.float32) + 0.5
  pixels = jnp.stack(jnp.meshgrid(centres, centres, indexing="xy"), axis=-1)
  inverse = affine_lib.invert_affine(affine)
  # Written out rather than a (S, S, 2) x (2, 2) matmul, which is slow on XLA's CPU backend.
  original = (pixels[..., :1] * inverse[:, 0] + pixels[..., 1:] * inverse[:, 1]
              + inverse[:, 2])
  return (original - principal) / focal


def capsule_coefficients(start, end, radius):
  """Capsules (K, 3), (K, 3), (K,) -> (K, 16) per-capsule terms of the ray tests.

  Columns: unit axis w (3), a.w, a_perp (3) (the axis point closest to the camera
  centre), |a_perp|^2 - r^2, length, start (3), |start|^2 - r^2, end (3), |end|^2 - r^2.
  """
  axis = end - start
  length = jnp.sqrt(_dot(axis, axis))[:, None]
  w = jnp.where(length > 1e-3, axis / jnp.maximum(length, 1e-3), jnp.array([0.0, 0.0, 1.0]))
  aw = _dot(start, w)[:, None]
  a_perp = start - aw * w
  r2 = (radius * radius)[:, None]
  power = lambda p: _dot(p, p)[:, None] - r2
  return jnp.concatenate([w, aw, a_perp, power(a_perp), length, start, power(start), end,
                          power(end)], axis=-1)


def hit_depths(coefficients, rays_xy):
  """(K, 16) `capsule_coefficients` and (P, 2) rays (x, y, 1) -> (K, P) camera-frame depth
  of each ray's first hit with each capsule; inf where it misses."""
  u, v = rays_xy[None, :, 0], rays_xy[None, :, 1]
  col = lambda i: coefficients[:, i:i + 1]
  dot = lambda i: u * col(i) + v * col(i + 1) + col(i + 2)  # d . (vector at columns i..i+2)
  dd = u * u + v * v + 1.0
  # Infinite cylinder: |t d_perp - a_perp|^2 = r^2 with d_perp = d - (d.w) w, a_perp.w = 0.
  dw = dot(0)
  a_quad = jnp.maximum(dd - dw * dw, 1e-12)
  b_half = dot(4)
  disc = b_half * b_half - a_quad * col(7)
  t = (b_half - jnp.sqrt(jnp.maximum(disc, 0.0))) / a_quad
  along = t * dw - col(3)
  depth = jnp.where((disc > 0) & (along >= 0) & (along <= col(8)), t, jnp.inf)
  inv_dd = 1.0 / dd
  for i in (9, 13):  # end spheres: |t d - e|^2 = r^2.
    de = dot(i)
    disc = de * de - dd * col(i + 3)
    t = (de - jnp.sqrt(jnp.maximum(disc, 0.0))) * inv_dd
    depth = jnp.minimum(depth, jnp.where(disc > 0, t, jnp.inf))
  return depth


def capsule_boxes(start, end, radius, focal, principal, affine):
  """Capsules (K, 3), (K, 3), (K,) -> (K, 4) conservative crop-pixel boxes x0, y0, x1, y1.

  Each end sphere's projection lies within x in [(e_x -+ r) / (e_z +- r)] (and y alike);
  a capsule, the hull of its two spheres, projects within the union of their boxes.
  """
  def sphere_box(centre):
    depth = jnp.maximum(centre[:, 2:3, None] + jnp.array([-1.0, 1.0]) * radius[:, None, None],
                        1.0)  # (K, 1, 2)
    lateral = centre[:, :2, None] + jnp.array([-1.0, 1.0]) * radius[:, None, None]  # (K, 2, 2)
    ratios = lateral[..., :, None] / depth[..., None, :]  # (K, 2, 2, 2)
    return ratios.min(axis=(-2, -1)), ratios.max(axis=(-2, -1))  # (K, 2) each
  (lo_a, hi_a), (lo_b, hi_b) = sphere_box(start), sphere_box(end)
  lo, hi = jnp.minimum(lo_a, lo_b) * focal + principal, jnp.maximum(hi_a, hi_b) * focal + principal
  corners = jnp.stack([lo, jnp.stack([lo[:, 0], hi[:, 1]], -1), hi,
                       jnp.stack([hi[:, 0], lo[:, 1]], -1)], axis=1)  # (K, 4, 2)
  crop_corners = affine_lib.apply_affine(affine, corners)
  return jnp.concatenate([crop_corners.min(axis=1), crop_corners.max(axis=1)], axis=-1)


def tile_primitives(boxes, near, size: int, tile: int, per_tile: int):
  """Bins primitives into square tiles of the crop.

  Args:
    boxes: (K, 4) crop-pixel boxes (`capsule_boxes`).
    near: (K,) nearest camera depth of each primitive; when more than `per_tile`
      primitives reach a tile, the nearest are kept (the far ones are the likely hidden).
    size, tile, per_tile: crop side, tile side (dividing size), primitives kept per tile.
  Returns:
    index (T, per_tile) int32 primitive ids per tile (T = (size // tile)^2, row-major),
    used (T, per_tile) bool, and reaching (T,) int32, how many primitives reach each tile
    (more than per_tile means the tile dropped some).
  """
  edges = jnp.arange(size // tile, dtype=jnp.float32) * tile
  y0, x0 = [g.reshape(-1) for g in jnp.meshgrid(edges, edges, indexing="ij")]
  reach = ((boxes[None, :, 0] <= x0[:, None] + tile) & (boxes[None, :, 2] >= x0[:, None])
           & (boxes[None, :, 1] <= y0[:, None] + tile) & (boxes[None, :, 3] >= y0[:, None]))
  score, index = jax.lax.top_k(jnp.where(reach, -near, -jnp.inf), per_tile)
  return index, jnp.isfinite(score), jnp.sum(reach, axis=1)


def _garments(appearance):
  """(K,) garment slot of each primitive for this appearance."""
  garment = jnp.asarray(_GARMENT)
  garment = garment.at[_FOREARMS].set(jnp.where(appearance.long_sleeves > 0, _T, _S))
  return garment.at[_SHINS].set(jnp.where(appearance.shorts > 0, _S, _B))


def _shading_table(joints, start, end, radius, appearance):
  """(K, 22) per-primitive shading inputs: start (3), axis (3), 1 / |axis|^2, albedo (3),
  pattern (4: stripe and check angular frequencies, amplitude, phase), unit axis (3),
  a unit vector across the axis (3), 1.0 on the head (where hair grows) and 1.0 on the
  primitives that span the waist."""
  axis = end - start
  length2 = _dot(axis, axis)[:, None]
  garment = _garments(appearance)
  clothed = (garment == _T) | (garment == _B)
  cloth = appearance.cloth_pattern[jnp.clip(garment, 0, 1)]  # (K, 4)
  pattern = jnp.stack([2 * jnp.pi * cloth[:, 0], 2 * jnp.pi * cloth[:, 1] * radius,
                       jnp.where(clothed, cloth[:, 2], 0.0), cloth[:, 3]], axis=-1)
  _, _, forward = body_frame(joints)
  w = _unit(axis)
  across = _unit(jnp.cross(w, forward))
  is_head = (jnp.arange(NUM_PRIMITIVES) == HEAD_BALL).astype(jnp.float32)[:, None]
  is_torso = jnp.zeros((NUM_PRIMITIVES, 1)).at[_TORSO].set(1.0)
  return jnp.concatenate([start, axis, jnp.where(length2 > 1e-6, 1.0 / length2, 0.0),
                          appearance.colours[garment], pattern, w, across, is_head, is_torso],
                         axis=-1)


def render(joints, focal, principal, affine, size: int, appearance) -> dict[str, jnp.ndarray]:
  """Renders one person.

  Args:
    joints: (17, 3) camera-frame joints, mm (all in front of the camera).
    focal, principal: (2,) pinhole intrinsics of the original image, pixels.
    affine: (2, 3) original pixels -> crop pixels (`crop.box_affine`).
    size: crop side S, pixels (static).
    appearance: an `appearance.Appearance`.
  Returns:
    image (S, S, 3) float32 in [0, 1], silhouette (S, S) float32 {0, 1}, parts (S, S)
    int32 (0 background, k = PART_NAMES index + 1), depth (S, S) camera z in mm (inf off
    the body).
  """
  ray_image = crop_rays(affine, focal, principal, size)
  rays = ray_image.reshape(-1, 2)
  start, end, radius = body_capsules(joints, appearance.girth)
  # Cull: each tile of the crop casts its rays only against the primitives whose boxes
  # reach it, so the per-pixel work is PRIMITIVES_PER_TILE capsules instead of all K.
  tile = max(size // TILES_PER_SIDE, 1)
  if size % tile:
    raise ValueError(f"render: size {size} is not a multiple of the tile side {tile}")
  tiles = size // tile
  index, used, _ = tile_primitives(
      capsule_boxes(start, end, radius, focal, principal, affine),
      jnp.minimum(start[:, 2], end[:, 2]) - radius, size, tile,
      min(PRIMITIVES_PER_TILE, NUM_PRIMITIVES))
  tile_rays = ray_image.reshape(tiles, tile, tiles, tile, 2).transpose(0, 2, 1, 3, 4).reshape(
      tiles * tiles, tile * tile, 2)
  # The barrier keeps XLA from fusing the gather (and the per-capsule terms) into the
  # per-pixel loop, where it would redo them for every pixel (2x slower on CPU).
  tile_coefficients = jax.lax.optimization_barrier(
      capsule_coefficients(start, end, radius)[index])
  depths = jax.vmap(hit_depths)(tile_coefficients, jax.lax.optimization_barrier(tile_rays))
  depths = jnp.where(used[:, :, None], depths, jnp.inf)  # (T, per_tile, tile * tile)
  # Nearest hit and its slot in one integer min: positive floats order like their bit
  # patterns, so the slot goes in the 5 lowest mantissa bits (depth error < 2^-18
  # relative, 0.02 mm at 5 m). XLA's CPU argmin (a two-operand reduce) costs twice this.
  bits = jax.lax.bitcast_convert_type(depths, jnp.int32)
  packed = jnp.min((bits & ~31) | jnp.arange(depths.shape[1], dtype=jnp.int32)[:, None], axis=1)
  k = jnp.take_along_axis(index, packed & 31, axis=1)
  depth = jax.lax.bitcast_convert_type(packed & ~31, jnp.float32)
  untile = lambda x: x.reshape(tiles, tiles, tile, tile).transpose(0, 2, 1, 3).reshape(-1)
  k, depth = untile(k), untile(depth)
  hit = jnp.isfinite(depth)
  direction = jnp.concatenate([rays, jnp.ones_like(rays[:, :1])], axis=-1)
  point = jnp.where(hit, depth, 0.0)[:, None] * direction
  # One gather of a per-primitive table: XLA's CPU gathers cost per call, not per byte.
  # Barriers: compute the table once, gather once, and let no fusion redo either per pixel.
  table = jax.lax.optimization_barrier(_shading_table(joints, start, end, radius, appearance))
  row = jax.lax.optimization_barrier(table[k])
  a, axis, inv_length2 = row[:, 0:3], row[:, 3:6], row[:, 6]
  albedo, pattern, w, e1 = row[:, 7:10], row[:, 10:14], row[:, 14:17], row[:, 17:20]
  # Normal: from the closest point on the winner's segment to the hit point.
  s = jnp.clip(_dot(point - a, axis) * inv_length2, 0.0, 1.0)
  normal = _unit(point - (a + s[:, None] * axis))
  up, _, forward = body_frame(joints)
  n_up, n_forward = _dot(normal, up), _dot(normal, forward)
  hair = (row[:, 20] > 0) & ((n_up > 0.25) | ((n_forward < -0.2) & (n_up > -0.55)))
  pelvis, thorax = joints[_J["Hip"]], joints[_J["Thorax"]]
  below_waist = _dot(point - pelvis, up) < WAIST * jnp.sqrt(_dot(thorax - pelvis, thorax - pelvis))
  # Cloth pattern in the capsule's own coordinates (mm along it, and across it), so it
  # moves with the body: stripes, or checks where the table gives an `around` frequency.
  along = _dot(point - a, w)
  stripes = jnp.sin(pattern[:, 0] * along + pattern[:, 3])
  checks = jnp.where(pattern[:, 1] > 0, jnp.sin(pattern[:, 1] * _dot(normal, e1)), 1.0)
  texture = 1.0 + jnp.where(hair, 0.0, pattern[:, 2] * stripes * checks)
  lambert = jnp.maximum(_dot(normal, appearance.light), 0.0)
  brightness = texture * (appearance.ambient + (1.0 - appearance.ambient) * lambert)
  # Per-pixel scalars first: fused straight into the (P, 3) colour below, XLA's CPU
  # backend would recompute the normal and the pattern once per colour channel.
  brightness, hair, below_waist = jax.lax.optimization_barrier((brightness, hair, below_waist))
  waist_colour = jnp.where(below_waist[:, None], appearance.colours[_B], appearance.colours[_T])
  albedo = jnp.where(row[:, 21:22] > 0, waist_colour, albedo)
  albedo = jnp.where(hair[:, None], appearance.colours[appearance_lib.HAIR], albedo)
  body = jnp.clip(albedo * brightness[:, None], 0.0, 1.0)
  background = appearance_lib.background_image(appearance, ray_image).reshape(-1, 3)
  image = jnp.where(hit[:, None], body, background)
  shape = (size, size)
  return {"image": image.reshape(shape + (3,)),
          "silhouette": hit.astype(jnp.float32).reshape(shape),
          "parts": jnp.where(hit, k + 1, 0).astype(jnp.int32).reshape(shape),
          "depth": depth.reshape(shape)}


def render_crop(joints, focal, principal, size: int, appearance, margin: float = 1.3):
  """Renders one person in a square crop around its projected joints.

  The box is `margin` times the larger side of the joints' 2D bounding box (pinhole
  projection, no distortion). Returns `render`'s outputs plus "crop" (2, 3), the affine
  from original pixels to crop pixels, and "joints_2d" (17, 2), the joints in crop pixels.
  """
  original = crop_lib.project_pinhole(joints, focal, principal)
  affine = crop_lib.box_affine(*crop_lib.box_around(original, margin), size)
  out = render(joints, focal, principal, affine, size, appearance)
  out["crop"] = affine
  out["joints_2d"] = affine_lib.apply_affine(affine, original)
  return out
