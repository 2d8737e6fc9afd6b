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

_T, _B, _S = appearance_lib.TOP, appearance_lib.BOTTOM, appearance_lib.SKIN
# Garment of each primitive with long sleeves and long trousers; forearms and shins
# switch to skin per appearance (see `_garments`).
_GARMENT = np.array(
    [{"RHip": _B, "RKnee": _B, "RFoot": _B, "LHip": _B, "LKnee": _B, "LFoot": _B,
      "Spine": _T, "Thorax": _T, "Neck/Nose": _S, "Head": _S, "LShoulder": _T,
      "LElbow": _T, "LWrist": _T, "RShoulder": _T, "RElbow": _T, "RWrist": _T}[
          skeleton.H36M_17.joint_names[c]] for _, c in _BONES]
    + [_T, _T, _S, _S, _S, appearance_lib.SHOES, appearance_lib.SHOES], np.int32)
_FOREARMS = np.array([i for i, (_, c) in enumerate(_BONES)
                      if skeleton.H36M_17.joint_names[c] in ("LWrist", "RWrist")])
_SHINS = np.array([i for i, (_, c) in enumerate(_BONES)
                   if skeleton.H36M_17.joint_names[c] in ("LFoot", "RFoot")])


def _unit(v, axis=-1):
  return v / jnp.maximum(jnp.linalg.norm(v, axis=axis, keepdims=True), 1e-6)


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
  original = crop_lib.apply_affine(crop_lib.invert_affine(affine), pixels)
  return (original - principal) / focal


def hit_depths(start, end, radius, rays_xy):
  """Capsules (K, 3), (K, 3), (K,) and (P, 2) rays (x, y, 1) -> (K, P) camera-frame depth
  of each ray's first hit with each capsule; inf where it misses."""
  u, v = rays_xy[None, :, 0], rays_xy[None, :, 1]
  dd = u * u + v * v + 1.0
  r = radius[:, None]
  axis = end - start
  length = jnp.linalg.norm(axis, axis=-1, keepdims=True)
  w = jnp.where(length > 1e-3, axis / jnp.maximum(length, 1e-3), jnp.array([0.0, 0.0, 1.0]))
  aw = jnp.sum(start * w, axis=-1, keepdims=True)
  a_perp = start - aw * w  # the axis point closest to the camera centre
  c_cyl = jnp.sum(a_perp * a_perp, axis=-1, keepdims=True) - r * r
  # Infinite cylinder: |t d_perp - a_perp|^2 = r^2 with d_perp = d - (d.w) w, a_perp.w = 0.
  dw = u * w[:, 0:1] + v * w[:, 1:2] + w[:, 2:3]
  a_quad = jnp.maximum(dd - dw * dw, 1e-12)
  b_half = u * a_perp[:, 0:1] + v * a_perp[:, 1:2] + a_perp[:, 2:3]
  disc = b_half * b_half - a_quad * c_cyl
  t = (b_half - jnp.sqrt(jnp.maximum(disc, 0.0))) / a_quad
  along = t * dw - aw
  depth = jnp.where((disc > 0) & (along >= 0) & (along <= length), t, jnp.inf)
  inv_dd = 1.0 / dd
  for centre in (start, end):  # end spheres: |t d - e|^2 = r^2.
    de = u * centre[:, 0:1] + v * centre[:, 1:2] + centre[:, 2:3]
    disc = de * de - dd * (jnp.sum(centre * centre, axis=-1, keepdims=True) - r * r)
    t = (de - jnp.sqrt(jnp.maximum(disc, 0.0))) * inv_dd
    depth = jnp.minimum(depth, jnp.where(disc > 0, t, jnp.inf))
  return depth


def _garments(appearance):
  """(K,) garment slot of each primitive for this appearance."""
  garment = jnp.asarray(_GARMENT)
  garment = garment.at[_FOREARMS].set(jnp.where(appearance.long_sleeves > 0, _T, _S))
  return garment.at[_SHINS].set(jnp.where(appearance.shorts > 0, _S, _B))


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
  rays = crop_rays(affine, focal, principal, size).reshape(-1, 2)
  start, end, radius = body_capsules(joints, appearance.girth)
  depths = hit_depths(start, end, radius, rays)
  k = jnp.argmin(depths, axis=0)
  depth = jnp.min(depths, axis=0)
  hit = jnp.isfinite(depth)
  direction = jnp.concatenate([rays, jnp.ones_like(rays[:, :1])], axis=-1)
  point = jnp.where(hit, depth, 0.0)[:, None] * direction
  # Normal: from the closest point on the winner's segment to the hit point.
  a, b = start[k], end[k]
  axis = b - a
  s = jnp.clip(jnp.sum((point - a) * axis, -1) / jnp.maximum(jnp.sum(axis * axis, -1), 1e-6),
               0.0, 1.0)
  normal = _unit(point - (a + s[:, None] * axis))
  up, _, forward = body_frame(joints)

  garment = _garments(appearance)[k]
  is_head = k == HEAD_BALL
  n_up, n_forward = normal @ up, normal @ forward
  hair = is_head & ((n_up > 0.25) | ((n_forward < -0.2) & (n_up > -0.55)))
  garment = jnp.where(hair, appearance_lib.HAIR, garment)
  albedo = appearance.colours[garment]
  # Cloth pattern in the capsule's own coordinates (mm along and around its axis), so
  # it moves with the body.
  w = _unit(axis)
  e1 = _unit(jnp.cross(w, forward))
  around = jnp.arctan2(jnp.sum(normal * jnp.cross(w, e1), -1), jnp.sum(normal * e1, -1))
  along = jnp.sum((point - a) * w, -1)
  clothed = (garment == _T) | (garment == _B)
  pattern = appearance.cloth_pattern[jnp.clip(garment, 0, 1)]
  stripes = jnp.sin(2 * jnp.pi * pattern[:, 0] * along + pattern[:, 3])
  checks = jnp.where(pattern[:, 1] > 0,
                     jnp.sin(2 * jnp.pi * pattern[:, 1] * around * radius[k]), 1.0)
  albedo = albedo * (1.0 + jnp.where(clothed, pattern[:, 2] * stripes * checks, 0.0))[:, None]
  lambert = jnp.maximum(normal @ appearance.light, 0.0)
  shade = appearance.ambient + (1.0 - appearance.ambient) * lambert
  body = jnp.clip(albedo * shade[:, None], 0.0, 1.0)
  background = appearance_lib.background_image(appearance, rays)
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
  out["joints_2d"] = crop_lib.apply_affine(affine, original)
  return out
