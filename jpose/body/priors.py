"""Pose and shape priors for body-model fitting (pure jnp, one example at a time).

No learned mixture prior (SMPLify's GMM file) is available here, so the pose prior is
  - bend limits: a squared hinge on joint angles that bend the wrong way (SMPLify's
    elbow/knee signs: of the 1,000 real SMPL fits of LSP, no elbow and the knees of
    10 images violate them), plus an L2 pull towards the rest pose on every joint but the root;
  - optionally a Gaussian over the body joints' axis-angles fitted to a pose library
    (e.g. those LSP fits), whose negative log-likelihood is the Mahalanobis distance.
The shape prior is L2 on betas (SMPL's betas are PCA coefficients with unit variance).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import flax
import jax.numpy as jnp
import numpy as np


class BendLimit(NamedTuple):
  """Penalise `sign * pose[joint, axis] > 0`, i.e. a hinge bending backwards."""

  joint: int
  axis: int
  sign: float


# SMPL: left elbow bends with negative y rotation, right elbow with positive y, knees
# with positive x (SMPLify's angle prior, pose indices 55, 58, 12, 15).
SMPL_BEND_LIMITS = (BendLimit(18, 1, 1.0), BendLimit(19, 1, -1.0), BendLimit(4, 0, -1.0),
                    BendLimit(5, 0, -1.0))


def bend_limit_penalty(pose, limits=SMPL_BEND_LIMITS):
  """(K, 3) axis-angle -> scalar, sum of squared backward bends (rad^2)."""
  if not limits:
    return jnp.zeros((), pose.dtype)
  joints = np.array([l.joint for l in limits])
  axes = np.array([l.axis for l in limits])
  signs = np.array([l.sign for l in limits], np.float32)
  return jnp.sum(jnp.maximum(signs * pose[joints, axes], 0.0)**2)


def pose_l2(pose):
  """(K, 3) -> scalar: squared angles of every joint but the root (global orientation)."""
  return jnp.sum(pose[1:]**2)


def shape_l2(betas):
  """(B,) -> scalar."""
  return jnp.sum(betas**2)


@flax.struct.dataclass
class GaussianPosePrior:
  """A Gaussian over the body joints' flattened axis-angles (root excluded)."""

  mean: jnp.ndarray  # (D,), D = 3 (K - 1)
  whitening: jnp.ndarray  # (D, D) W with W W^T = covariance^-1

  def __call__(self, pose):
    """(K, 3) -> scalar: 0.5 * Mahalanobis^2 (zero at the library's mean pose)."""
    x = pose[1:].reshape(-1) - self.mean
    return 0.5 * jnp.sum((x @ self.whitening)**2)


def fit_gaussian(poses, regularization: float = 1e-3) -> GaussianPosePrior:
  """(N, K * 3) or (N, K, 3) library poses -> their Gaussian; the root is dropped.

  `regularization` (rad^2) is added to the covariance diagonal, so directions the
  library never moves (e.g. SMPL's hands in LSP fits) cost a lot but stay finite.
  """
  poses = np.asarray(poses, np.float64)
  poses = poses.reshape(poses.shape[0], -1)[:, 3:]
  if poses.shape[0] < 2:
    raise ValueError(f"fit_gaussian: needs at least 2 poses, got {poses.shape[0]}")
  mean = poses.mean(axis=0)
  covariance = np.cov(poses, rowvar=False) + regularization * np.eye(poses.shape[1])
  whitening = np.linalg.cholesky(np.linalg.inv(covariance))
  return GaussianPosePrior(mean=jnp.asarray(mean, jnp.float32),
                           whitening=jnp.asarray(whitening, jnp.float32))


def load_pose_library(path: str, num_joints: int = 24) -> np.ndarray:
  """A pose library file -> (N, K, 3) float32 axis-angles (the one reader of them all).

  path: an (N, >= 3K) .npy with the K joints' axis-angles first (SPIN's (N, 82) SMPL fits:
  72 pose + 10 shape; `pose_library`'s fitted default has the same layout), or a
  `python -m jpose.fit` output .npz (its "pose" field, (N, K, 3)).
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: pose library not found")
  if path.endswith(".npz"):
    return _load_fitted_library(path, num_joints)
  library = np.load(path, allow_pickle=False)
  if library.ndim != 2 or library.shape[1] < 3 * num_joints:
    raise ValueError(f"{path}: pose library has shape {library.shape}, expected "
                     f"(N, >= {3 * num_joints}) with the {num_joints} joints' axis-angles "
                     "first")
  if not np.all(np.isfinite(library[:, :3 * num_joints])):
    raise ValueError(f"{path}: pose library contains NaN or infinite values")
  return library[:, :3 * num_joints].reshape(-1, num_joints, 3).astype(np.float32)


def _load_fitted_library(path: str, num_joints: int) -> np.ndarray:
  """A `python -m jpose.fit` .npz -> its (N, K, 3) "pose" field, checked."""
  with np.load(path, allow_pickle=False) as data:
    if "pose" not in data:
      raise ValueError(f"{path}: no 'pose' field (fields: {sorted(data.files)}); expected "
                       "a `python -m jpose.fit` library")
    pose = np.asarray(data["pose"], np.float32)
  if pose.ndim != 3 or pose.shape[1:] != (num_joints, 3) or pose.shape[0] == 0:
    raise ValueError(f"{path}: field 'pose' has shape {pose.shape}, expected "
                     f"(N, {num_joints}, 3) (fitted with an SMPL-jointed model)")
  if not np.all(np.isfinite(pose)):
    raise ValueError(f"{path}: field 'pose' contains NaN or infinite values")
  return pose
