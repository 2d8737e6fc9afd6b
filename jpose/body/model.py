"""`BodyModel`: the arrays of a linear-blend-skinned body model (SMPL, ANNY, ...).

Conventions shared by every loader and by `jpose.body.lbs`:
  - lengths in metres (Human3.6M joints are in mm: convert at the boundary, see fit.py);
  - V vertices, K kinematic joints (bones), B shape coefficients, F triangles;
  - `parents[k] < k` for k >= 1 and `parents[0] == -1` (the root); joints are ordered
    so that a parent always comes before its children, as in SMPL;
  - pose is axis-angle per joint, (K, 3), each rotation local to the parent's frame;
  - `posedirs` multiplies the pose feature (R_k - I) row-major flattened for k >= 1
    (SMPL's `lrotmin`); a model without pose correctives stores P = 0 columns, which
    `lbs.skin` skips (a zero (V, 3, 9(K-1)) array costs hundreds of MB for K ~ 160);
  - regressors are (J, V) matrices applied to (V, 3) vertices: `j_regressor` gives the
    rest joints of the kinematic tree, `h36m_regressor` the 17 Human3.6M joints in
    `jpose.geometry.skeleton.H36M_17` order, `lsp_regressor` the 14 LSP joints in
    `skeleton.LSP_14` order.
"""

from __future__ import annotations

import flax
import jax.numpy as jnp
import numpy as np

from jpose.geometry import skeleton


@flax.struct.dataclass
class BodyModel:
  """A body model's arrays; a pytree, so it can be passed through jit and vmap."""

  v_template: jnp.ndarray  # (V, 3) rest vertices, metres.
  shapedirs: jnp.ndarray  # (V, 3, B) shape blend shapes, metres per unit beta.
  posedirs: jnp.ndarray  # (V, 3, P) pose blend shapes, P = 9 (K - 1) or 0 for none.
  j_regressor: jnp.ndarray  # (K, V) rest joints of the kinematic tree.
  weights: jnp.ndarray  # (V, K) skinning weights, rows sum to 1.
  faces: jnp.ndarray  # (F, 3) int32 vertex indices.
  h36m_regressor: jnp.ndarray  # (17, V) vertices -> Human3.6M-17 joints.
  lsp_regressor: jnp.ndarray  # (14, V) vertices -> LSP-14 joints.
  parents: tuple[int, ...] = flax.struct.field(pytree_node=False)  # (K,), -1 for the root.
  name: str = flax.struct.field(pytree_node=False, default="")

  @property
  def num_vertices(self) -> int:
    return int(self.v_template.shape[0])

  @property
  def num_joints(self) -> int:
    return len(self.parents)

  @property
  def num_betas(self) -> int:
    return int(self.shapedirs.shape[-1])


class BodyModelError(ValueError):
  """A body model's arrays are missing, mis-shaped or inconsistent; names file and field."""

  def __init__(self, source: str, problem: str):
    super().__init__(f"{source}: {problem}")
    self.source = source


def check(model: BodyModel, source: str = "",
          file_fields: dict[str, str] | None = None) -> BodyModel:
  """Validates shapes, the kinematic tree and finiteness; returns the model unchanged.

  `source` (a file path, say) prefixes every error, and `file_fields` renames fields
  to the names the file uses (e.g. {"faces": "f"}), so the user knows what to fix.
  """
  source = source or model.name or "body model"
  file_fields = file_fields or {}

  def named(field):
    return file_fields.get(field, field)

  v = np.shape(model.v_template)
  if len(v) != 2 or v[1] != 3 or v[0] == 0:
    raise BodyModelError(source, f"field 'v_template' has shape {v}, expected (V, 3)")
  num_v, num_k = v[0], len(model.parents)
  parents = model.parents
  if num_k == 0 or parents[0] != -1 or any(not 0 <= p < k for k, p in enumerate(parents) if k):
    raise BodyModelError(source, f"field '{named('parents')}' must start with -1 and list "
                         f"each joint's parent before the joint (got {tuple(parents)[:30]})")
  expected = {
      "shapedirs": (num_v, 3, None),
      "posedirs": (num_v, 3, None),
      "j_regressor": (num_k, num_v),
      "weights": (num_v, num_k),
      "faces": (None, 3),
      "h36m_regressor": (skeleton.H36M_17.num_joints, num_v),
      "lsp_regressor": (skeleton.LSP_14.num_joints, num_v),
  }
  for field, want in expected.items():
    got = np.shape(getattr(model, field))
    if len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got)):
      shown = tuple("*" if w is None else w for w in want)
      raise BodyModelError(source, f"field '{named(field)}' has shape {got}, expected {shown}")
    if field != "faces" and not np.all(np.isfinite(np.asarray(getattr(model, field)))):
      raise BodyModelError(source, f"field '{named(field)}' contains NaN or infinite values")
  num_pose = np.shape(model.posedirs)[-1]
  if num_pose not in (0, 9 * (num_k - 1)):
    raise BodyModelError(source, f"field '{named('posedirs')}' has {num_pose} pose columns, "
                         f"expected 9 * (K - 1) = {9 * (num_k - 1)} or 0 (no pose blend "
                         "shapes)")
  faces = np.asarray(model.faces)
  if faces.size and (faces.min() < 0 or faces.max() >= num_v):
    raise BodyModelError(source, f"field '{named('faces')}' indexes vertices outside [0, {num_v})")
  return model
