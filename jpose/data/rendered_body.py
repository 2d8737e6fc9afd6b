"""Rendered bodies: the default body model (ANNY) posed from a pose library, drawn with
the mesh rasteriser over the mannequin's procedural backgrounds, as an image batch.

Each example is a function of (index, seed) only: a library pose, betas ~ N(0, sigma)
clipped, a random global orientation (any yaw, a small tilt) and camera distance, and
one `appearance.Appearance` (clothing colours, light, background). The library's own
global orientation is discarded (LSP fits hold a camera's, Human3.6M fits a z-up
world's). The crop is a square box around the projected vertices, and the body is
rasterised directly at the crop through the crop's pinhole camera, so the silhouette,
the shaded image and `joints_2d` (the model's Human3.6M-17 regressor joints, projected)
all come from one camera. Everything after the library lookup is pure jnp for one
example, vmapped and jitted in `render_batch`.

The body's albedo is the appearance's garment colour of each face's dominant skinning
joint (top on the torso and upper arms, bottom on the legs, skin on head, neck and
hands, shoes on the feet, hair on the head's top and back; forearms and shins follow
the appearance's sleeves and shorts), times `mesh.shade`'s two-sided Lambert term.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jpose.body import lbs
from jpose.body import model as body_model
from jpose.body import pose_library
from jpose.body import priors
from jpose.body import smpl
from jpose.geometry import affine as affine_lib
from jpose.render import appearance as appearance_lib
from jpose.render import crop as crop_lib
from jpose.render import mannequin
from jpose.render import mesh

NUM_SMPL_JOINTS = 24

_T, _B, _S = appearance_lib.TOP, appearance_lib.BOTTOM, appearance_lib.SKIN
# Garment of each SMPL joint's skin: pelvis, hips, spine1, knees (shins), spine2, ankles,
# spine3, feet, neck, collars, head, shoulders (upper arms), elbows (forearms), wrists,
# hands. Forearms and shins are switched per appearance (see `_face_albedo`).
_JOINT_GARMENT = np.array([_B, _B, _B, _T, _B, _B, _T, appearance_lib.SHOES,
                           appearance_lib.SHOES, _T, appearance_lib.SHOES,
                           appearance_lib.SHOES, _S, _T, _T, _S, _T, _T, _T, _T, _S, _S,
                           _S, _S], np.int32)
# Part map label k (k >= 1) is the skin of SMPL joint PART_NAMES[k - 1]; mirroring an
# image swaps labels by PART_FLIP_PERMUTATION (for `augment.augment`).
PART_NAMES = smpl.JOINT_NAMES


def _mirrored(name: str) -> str:
  """'left_hip' -> 'right_hip'; unsided names are their own mirror."""
  for side, other in (("left_", "right_"), ("right_", "left_")):
    if name.startswith(side):
      return other + name[len(side):]
  return name


PART_FLIP_PERMUTATION = (0,) + tuple(1 + PART_NAMES.index(_mirrored(n)) for n in PART_NAMES)
_FOREARMS = np.array([PART_NAMES.index(n) for n in ("left_elbow", "right_elbow")])
_SHINS = np.array([PART_NAMES.index(n) for n in ("left_knee", "right_knee")])
_HEAD = PART_NAMES.index("head")
# Camera frame (x right, y down, z forward) from the model's (y up, facing +z): a half
# turn about x, so the unrotated body stands upright facing the camera.
_MODEL_TO_CAMERA = np.diag([1.0, -1.0, -1.0]).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class BodyRenderConfig:
  """How bodies are drawn (hashable: it is a static argument of `render_batch`)."""

  size: int = 64  # crop side S, pixels.
  margin: float = 1.2  # crop side over the larger side of the projected body's box.
  beta_sigma: float = 0.7  # betas ~ N(0, sigma); ANNY leaves human bodies past |beta| ~ 2,
  beta_clip: float = 2.0  # so each beta is clipped to +-beta_clip.
  num_betas: int = 10
  distance_m: tuple[float, float] = (3.0, 7.0)  # root depth, uniform, metres.
  offset_m: tuple[float, float] = (0.5, 0.3)  # root's x, y, uniform in +-, metres.
  tilt: float = 0.25  # pitch and roll, uniform in +-, radians (yaw is uniform).
  focal: float = 1000.0  # the virtual original camera's intrinsics, pixels.
  principal: tuple[float, float] = (500.0, 500.0)


def _rotation(axis: int, angle):
  """() angle -> (3, 3) rotation about coordinate axis 0, 1 or 2."""
  c, s = jnp.cos(angle), jnp.sin(angle)
  i, j = [(1, 2), (2, 0), (0, 1)][axis]
  r = jnp.eye(3)
  return r.at[i, i].set(c).at[j, j].set(c).at[i, j].set(-s).at[j, i].set(s)


def sample_parameters(poses, key, config: BodyRenderConfig):
  """One example's random draw: theta (24, 3) with the camera-frame global orientation,
  betas (num_betas,), the root's (Human3.6M pelvis) camera-frame target position (3,) in
  metres, and an appearance key."""
  k_row, k_beta, k_angle, k_place, k_look = jax.random.split(key, 5)
  theta = poses[jax.random.randint(k_row, (), 0, poses.shape[0])]
  betas = jnp.clip(config.beta_sigma * jax.random.normal(k_beta, (config.num_betas,)),
                   -config.beta_clip, config.beta_clip)
  yaw, pitch, roll = jax.random.uniform(k_angle, (3,), minval=-1.0, maxval=1.0) * jnp.array(
      [jnp.pi, config.tilt, config.tilt])
  orientation = (jnp.asarray(_MODEL_TO_CAMERA) @ _rotation(2, roll) @ _rotation(0, pitch)
                 @ _rotation(1, yaw))
  theta = theta.at[0].set(lbs.axis_angle_from_matrix(orientation))
  u = jax.random.uniform(k_place, (3,), minval=-1.0, maxval=1.0)
  near, far = config.distance_m
  root = jnp.array([config.offset_m[0] * u[0], config.offset_m[1] * u[1],
                    near + 0.5 * (u[2] + 1.0) * (far - near)])
  return theta, betas, root, k_look


def _face_albedo(model: body_model.BodyModel, look: appearance_lib.Appearance):
  """(F, 3) RGB and (F,) int32 dominant SMPL joint of each face (its first vertex's).

  Hair covers the head's top and back, as on the mannequin: the head faces whose
  direction from the head's centre, on the rest mesh (y up, facing +z), points up or
  back. A direction from the centre rather than a face normal, which would depend on
  the faces' winding."""
  joint = jnp.argmax(model.weights, axis=-1)[model.faces[:, 0]]
  garment = jnp.asarray(_JOINT_GARMENT)
  garment = garment.at[_FOREARMS].set(jnp.where(look.long_sleeves > 0, _T, _S))
  garment = garment.at[_SHINS].set(jnp.where(look.shorts > 0, _S, _B))
  albedo = look.colours[garment[joint]]
  on_head = joint == _HEAD
  centroid = jnp.mean(model.v_template[model.faces], axis=1)  # (F, 3)
  head_centre = (jnp.sum(jnp.where(on_head[:, None], centroid, 0.0), axis=0)
                 / jnp.maximum(jnp.sum(on_head), 1))
  direction = centroid - head_centre
  direction = direction / jnp.maximum(jnp.linalg.norm(direction, axis=-1, keepdims=True),
                                      1e-9)
  up, forward = direction[:, 1], direction[:, 2]
  hair = on_head & ((up > 0.25) | ((forward < -0.2) & (up > -0.55)))
  albedo = jnp.where(hair[:, None], look.colours[appearance_lib.HAIR], albedo)
  return albedo, joint.astype(jnp.int32)


def crop_camera(affine, focal, principal) -> mesh.Pinhole:
  """The crop's pinhole camera for an axis-aligned crop affine (2, 3) (scale and shift,
  as `crop.box_affine` makes): crop pixel = A @ (f x / z + c, 1)."""
  scale = jnp.diagonal(affine[:, :2])
  return mesh.Pinhole(focal=scale * focal, principal=scale * principal + affine[:, 2])


def render_body(model: body_model.BodyModel, theta, betas, root, look, config:
                BodyRenderConfig, affine=None) -> dict[str, jnp.ndarray]:
  """Renders one body.

  Args:
    model: the body model (SMPL-format, 24 joints).
    theta: (24, 3) axis-angles, theta[0] the camera-frame global orientation.
    betas: (B,) shape coefficients.
    root: (3,) where the Human3.6M pelvis goes, camera frame, metres.
    look: an `appearance.Appearance`.
    config: sizes and the virtual camera.
    affine: (2, 3) axis-aligned crop affine; default: the box around the projected
      vertices with `config.margin`.
  Returns:
    image (S, S, 3) float32 [0, 1], silhouette (S, S) {0, 1}, parts (S, S) int32 (0 for
    background, k = dominant SMPL joint + 1, see PART_NAMES), joints_2d (17, 2) crop pixels, visible
    (17,), pose_3d (17, 3) root-relative mm, root_depth (), crop (2, 3), camera_f,
    camera_c (2,), theta (24, 3), betas (B,), translation (3,) metres (vertices =
    skin(theta, betas) + translation).
  """
  size = config.size
  focal = jnp.full((2,), config.focal, jnp.float32)
  principal = jnp.asarray(config.principal, jnp.float32)
  vertices, _ = lbs.skin(model, theta, betas)
  joints = lbs.regress(model, vertices, "h36m")
  # Root-relative before the translation, so pose_3d's root row is exactly zero.
  pose_3d = (joints - joints[0]) * 1000.0
  translation = root - joints[0]
  vertices = vertices + translation
  joints_mm = (joints + translation) * 1000.0
  if affine is None:
    projected = crop_lib.project_pinhole(vertices, focal, principal)
    affine = crop_lib.box_affine(*crop_lib.box_around(projected, config.margin), size)
  camera = crop_camera(affine, focal, principal)
  raster = mesh.rasterize(vertices, model.faces, camera, size)
  covered = raster.face_index >= 0
  albedo, joint = _face_albedo(model, look)
  owner = jnp.maximum(raster.face_index, 0)
  grey = mesh.shade(vertices, model.faces, raster, light=look.light, ambient=look.ambient)
  body = jnp.clip(albedo[owner] * grey[..., None], 0.0, 1.0)
  rays = mannequin.crop_rays(affine, focal, principal, size)
  image = jnp.where(covered[..., None], body, appearance_lib.background_image(look, rays))
  joints_2d = affine_lib.apply_affine(affine, crop_lib.project_pinhole(joints_mm, focal,
                                                                       principal))
  inside = jnp.all((joints_2d >= 0) & (joints_2d <= size), axis=-1)
  return {"image": image, "silhouette": covered.astype(jnp.float32),
          "parts": jnp.where(covered, joint[owner] + 1, 0).astype(jnp.int32),
          "joints_2d": joints_2d, "visible": inside.astype(jnp.float32),
          "pose_3d": pose_3d, "root_depth": joints_mm[0, 2],
          "crop": affine, "camera_f": focal, "camera_c": principal,
          "theta": theta, "betas": betas, "translation": translation}


@functools.partial(jax.jit, static_argnames=("config",))
def render_batch(model: body_model.BodyModel, poses, indices, seed,
                 config: BodyRenderConfig = BodyRenderConfig()) -> dict[str, jnp.ndarray]:
  """(B,) example indices -> an image batch in the image conventions' layout.

  Args:
    model: the body model (e.g. `anny.load()`).
    poses: (N, 24, 3) pose library (`priors.load_pose_library`), on the device.
    indices: (B,) int32 example indices.
    seed: int (or () int32 array); example i is a function of (i, seed) alone.
    config: static `BodyRenderConfig`.
  Returns:
    `render_body`'s fields with a leading B axis, plus has_3d (B,) ones.
  """
  base = jax.random.PRNGKey(seed)

  def one(index):
    theta, betas, root, k_look = sample_parameters(
        poses, jax.random.fold_in(base, index), config)
    return render_body(model, theta, betas, root, appearance_lib.sample_appearance(k_look),
                       config)

  out = jax.vmap(one)(jnp.asarray(indices, jnp.int32))
  out["has_3d"] = jnp.ones(out["root_depth"].shape, jnp.float32)
  return out


@functools.partial(jax.jit, static_argnames=("config",))
def render_rows(model: body_model.BodyModel, poses, indices, seed,
                config: BodyRenderConfig = BodyRenderConfig()) -> dict[str, jnp.ndarray]:
  """`render_batch` with example i's pose given, (B, 24, 3): each library row rendered
  exactly once (validation sets), with the same random shape, view and look as
  `render_batch` draws for (indices[i], seed)."""
  base = jax.random.PRNGKey(seed)

  def one(pose, index):
    theta, betas, root, k_look = sample_parameters(pose[None], jax.random.fold_in(base, index),
                                                   config)
    return render_body(model, theta, betas, root, appearance_lib.sample_appearance(k_look),
                       config)

  out = jax.vmap(one)(jnp.asarray(poses, jnp.float32), jnp.asarray(indices, jnp.int32))
  out["has_3d"] = jnp.ones(out["root_depth"].shape, jnp.float32)
  return out


@dataclasses.dataclass
class RenderedBodies:
  """The built-in rendered-body source: a model, a pose library and a config.

  `RenderedBodies.default()` is ANNY (`anny.load`) posed by the LSP fits;
  `batch(indices, seed)` renders (B,) examples."""

  model: body_model.BodyModel
  poses: jnp.ndarray  # (N, 24, 3)
  config: BodyRenderConfig = BodyRenderConfig()

  def __post_init__(self):
    if self.model.num_joints != NUM_SMPL_JOINTS:
      raise ValueError(f"RenderedBodies: model '{self.model.name}' has "
                       f"{self.model.num_joints} joints; the pose library is SMPL's 24")
    if self.config.num_betas > self.model.num_betas:
      raise ValueError(f"RenderedBodies: config.num_betas {self.config.num_betas} > the "
                       f"model's {self.model.num_betas}")
    self.poses = jnp.asarray(self.poses, jnp.float32)

  @classmethod
  def default(cls, library_path: str | None = None, config: BodyRenderConfig | None = None,
              **anny_kwargs) -> "RenderedBodies":
    """ANNY (`anny.load(**anny_kwargs)`) posed by the library at `library_path` (default:
    `pose_library.default_path`)."""
    from jpose.body import anny  # the conversion's scipy/zip code only where it is used.
    model = anny.load(**anny_kwargs)
    path = library_path or pose_library.default_path(model, anny_kwargs.get("cache_dir"))
    return cls(model, priors.load_pose_library(path, NUM_SMPL_JOINTS),
               config or BodyRenderConfig())

  def batch(self, indices, seed: int = 0) -> dict[str, jnp.ndarray]:
    return render_batch(self.model, self.poses, jnp.asarray(indices), seed, self.config)
