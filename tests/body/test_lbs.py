"""Linear blend skinning against the SMPL paper's equations written out in numpy."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jpose.body import lbs


def _rotation_numpy(r):
  """Rodrigues from the axis and angle, float64 (Loper et al. 2015, eq. 1)."""
  angle = np.linalg.norm(r)
  if angle == 0.0:
    return np.eye(3)
  x, y, z = r / angle
  k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
  return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


# One compiled skinning function for every test (eager dispatch of its ~60 ops is slower).
_skin = jax.jit(lbs.skin)


def skin_numpy(fields, pose, betas):
  """SMPL by the paper (eqs. 1-4), one joint at a time with 4x4 transforms, float64."""
  v_template = fields["v_template"]
  parents = [-1] + [int(p) for p in fields["kintree_table"][0, 1:]]
  shapedirs = fields["shapedirs"][..., :len(betas)]
  v_shaped = v_template + np.einsum("vcb,b->vc", shapedirs, betas)
  joints = fields["J_regressor"] @ v_shaped
  pose = pose.reshape(-1, 3)
  rotations = [_rotation_numpy(r) for r in pose]
  feature = np.concatenate([(r - np.eye(3)).ravel() for r in rotations[1:]])
  v_posed = v_shaped + np.einsum("vcp,p->vc", fields["posedirs"], feature)
  world = []
  for k, parent in enumerate(parents):
    local = np.eye(4)
    local[:3, :3] = rotations[k]
    local[:3, 3] = joints[k] - (joints[parent] if parent >= 0 else 0.0)
    world.append(local if parent < 0 else world[parent] @ local)
  posed_joints = np.stack([g[:3, 3] for g in world])
  skinning = []
  for k, g in enumerate(world):  # G_k(theta, J) G_k(0, J)^-1
    rest = np.eye(4)
    rest[:3, 3] = -joints[k]
    skinning.append(g @ rest)
  # Eq. 4's sum over joints, for all vertices at once (a Python loop over 6,890
  # vertices costs seconds per call).
  blended = np.einsum("vk,kij->vij", fields["weights"], np.stack(skinning))
  homogeneous = np.concatenate([v_posed, np.ones((len(v_posed), 1))], axis=1)
  return np.einsum("vij,vj->vi", blended, homogeneous)[:, :3], posed_joints


@pytest.fixture(scope="module")
def real_poses(real_data_dir):
  """SMPL poses and shapes fitted to real LSP images (SPIN's static fits)."""
  fits = np.load(f"{real_data_dir}/smpl_fits/lsp_orig_fits.npy")
  return fits[:, :72].astype(np.float32), fits[:, 72:].astype(np.float32)


def test_matches_the_papers_equations(smpl_model, smpl_fields, real_poses):
  poses, shapes = real_poses
  for i in (3, 500):
    vertices, joints = _skin(smpl_model, poses[i], shapes[i])
    want_v, want_j = skin_numpy(smpl_fields, poses[i].astype(np.float64),
                                shapes[i].astype(np.float64))
    # Measured max |diff| 3.6e-7 m (vertices) and 3.0e-7 m (joints) in float32 on a
    # 1.8 m body; 4e-6 m is a 10x margin.
    np.testing.assert_allclose(vertices, want_v, atol=4e-6)
    np.testing.assert_allclose(joints, want_j, atol=4e-6)


def test_rest_pose_and_mean_shape_give_the_template(smpl_model):
  vertices, joints = _skin(smpl_model, jnp.zeros((24, 3)), jnp.zeros(10))
  np.testing.assert_allclose(vertices, smpl_model.v_template, atol=1e-6)
  np.testing.assert_allclose(joints, smpl_model.j_regressor @ smpl_model.v_template, atol=1e-6)


def test_root_rotation_moves_the_body_rigidly(smpl_model):
  betas = jnp.linspace(-1.0, 1.0, 10)
  root = np.array([0.3, -1.2, 0.5])
  pose = jnp.zeros((24, 3)).at[0].set(root)
  vertices, _ = _skin(smpl_model, pose, betas)
  shaped, rest_joints = _skin(smpl_model, jnp.zeros((24, 3)), betas)
  rotation = _rotation_numpy(root)
  want = (np.asarray(shaped) - rest_joints[0]) @ rotation.T + rest_joints[0]
  # Measured 2.4e-7 m: float32 rounding on coordinates of ~1 m.
  np.testing.assert_allclose(vertices, want, atol=3e-6)


def test_flat_and_per_joint_pose_agree_and_bad_sizes_raise(smpl_model):
  pose = jnp.asarray(np.random.default_rng(0).normal(size=(24, 3)) * 0.3, jnp.float32)
  a, _ = _skin(smpl_model, pose, jnp.zeros(10))
  b, _ = _skin(smpl_model, pose.reshape(-1), jnp.zeros(10))
  chex.assert_trees_all_close(a, b)
  with pytest.raises(ValueError, match="expected 24 joints"):
    _skin(smpl_model, jnp.zeros(69), jnp.zeros(10))
  with pytest.raises(ValueError, match="betas"):
    _skin(smpl_model, pose, jnp.zeros(11))


def test_rodrigues_small_angles_and_zero_gradient():
  rng = np.random.default_rng(1)
  scales = np.repeat([1e-7, 1e-4, 5e-3, 1e-2, 0.1, 1.0, 3.0, 3.14], 8)
  r = rng.normal(size=(64, 3)) * scales[:, None]
  got = jax.jit(lbs.rodrigues)(jnp.asarray(r, jnp.float32))
  want = np.stack([_rotation_numpy(x) for x in r])
  # Measured 4.8e-7, the Taylor/exact switch at |r| = 1e-2 included.
  np.testing.assert_allclose(got, want, atol=5e-6)
  # dR/dr_i at r = 0 is the generator skew(e_i).
  jac = jax.jit(jax.jacfwd(lbs.rodrigues))(jnp.zeros(3))
  skew = [np.array([[0, -e[2], e[1]], [e[2], 0, -e[0]], [-e[1], e[0], 0]]) for e in np.eye(3)]
  np.testing.assert_allclose(jac, np.stack(skew, axis=-1), atol=1e-7)


def test_gradients_are_finite_and_correct_at_the_rest_pose(smpl_model, smpl_fields):
  target = jnp.asarray(np.random.default_rng(2).normal(size=(6890, 3)), jnp.float32)

  def loss(pose):
    return jnp.sum(lbs.skin(smpl_model, pose, jnp.zeros(10))[0] * target)
  grad = jax.jit(jax.grad(loss))(jnp.zeros(72))
  assert np.all(np.isfinite(grad))
  # Central differences of the float64 numpy reference: root, a neck and an elbow angle.
  step = 1e-3
  target64 = np.asarray(target, np.float64)
  for i in (0, 37, 55):
    e = np.zeros(72)
    e[i] = step
    plus, minus = (np.sum(skin_numpy(smpl_fields, s * e, np.zeros(10))[0] * target64)
                   for s in (1.0, -1.0))
    # Measured relative |diff| <= 1e-6 (float32 gradient, O(step^2) difference error).
    np.testing.assert_allclose(grad[i], (plus - minus) / (2 * step), rtol=1e-5)


def test_vmap_over_a_batch_equals_the_loop(smpl_model, real_poses):
  poses, shapes = real_poses
  vertices, joints = jax.jit(lbs.skin_batch)(smpl_model, poses[:4], shapes[:4])
  chex.assert_shape(vertices, (4, 6890, 3))
  chex.assert_shape(joints, (4, 24, 3))
  for i in range(4):
    v, j = _skin(smpl_model, poses[i], shapes[i])
    np.testing.assert_allclose(vertices[i], v, atol=1e-6)
    np.testing.assert_allclose(joints[i], j, atol=1e-6)


def test_bf16_model_computes_in_float32(smpl_model, real_poses):
  poses, shapes = real_poses
  half = jax.tree.map(lambda x: x.astype(jnp.bfloat16) if x.dtype == jnp.float32 else x,
                      smpl_model)
  vertices, _ = _skin(half, poses[7].astype(jnp.bfloat16), shapes[7])
  full, _ = _skin(smpl_model, poses[7], shapes[7])
  assert vertices.dtype == jnp.float32
  # bf16 storage rounds ~1 m coordinates by up to 3.9 mm (8-bit mantissa); measured
  # 8.4 mm after posing, the bound a few half-ulps; the margin is 3.5x.
  np.testing.assert_allclose(vertices, full, atol=0.03)


def test_regress_layouts(smpl_model):
  vertices = smpl_model.v_template
  chex.assert_shape(lbs.regress(smpl_model, vertices, "h36m"), (17, 3))
  chex.assert_shape(lbs.regress(smpl_model, vertices[None], "lsp"), (1, 14, 3))
  np.testing.assert_allclose(lbs.regress(smpl_model, vertices, "kinematic"),
                             smpl_model.j_regressor @ vertices, atol=1e-6)
  with pytest.raises(ValueError, match="coco"):
    lbs.regress(smpl_model, vertices, "coco")


def test_axis_angle_from_matrix_inverts_rodrigues():
  rng = np.random.default_rng(3)
  axes = rng.normal(size=(40, 3))
  axes /= np.linalg.norm(axes, axis=1, keepdims=True)
  angles = np.concatenate([[0.0, 1e-6, 1e-3], rng.uniform(0, np.pi, 31),
                           np.pi - np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 0.0])])
  matrices = np.stack([_rotation_numpy(a * t) for a, t in zip(axes, angles)])
  got = np.asarray(jax.jit(lbs.axis_angle_from_matrix)(jnp.asarray(matrices, jnp.float32)))
  # Measured max 3.1e-7 rad on the angles, 2.2e-7 on the matrices (compared as
  # matrices: at pi, r and -r are the same rotation), both float32 rounding.
  np.testing.assert_allclose(np.linalg.norm(got, axis=1), angles, atol=3e-6)
  back = np.stack([_rotation_numpy(r) for r in got.astype(np.float64)])
  np.testing.assert_allclose(back, matrices, atol=3e-6)


def test_matches_the_body_models_package(smpl_model, smpl_npz_path, real_poses):
  """The independent `body-models` package (PyPI, Apache-2.0) reads the same .npz.

  Not a jpose dependency: the test runs where it is installed. Measured 4.2e-7 m
  (body-models 0.26.2, numpy backend, LSP fits 3, 500, 999).
  """
  numpy_smpl = pytest.importorskip("body_models.smpl.numpy")
  reference = numpy_smpl.SMPL(model_path=smpl_npz_path)
  poses, shapes = real_poses
  for i in (3, 500, 999):
    pose = poses[i].reshape(24, 3)
    want = reference.forward_vertices(pose[None, 1:], pelvis_rotation=pose[None, 0],
                                      shape=shapes[None, i])[0]
    np.testing.assert_allclose(_skin(smpl_model, pose, shapes[i])[0], want, atol=4e-6)
