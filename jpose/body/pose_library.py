"""The default pose library: which file the rendered bodies are posed from when none is named.

SPIN's 1,000 SMPL fits of LSP ($JPOSE_DATA_DIR/smpl_fits/lsp_orig_fits.npy) where the
shared data has them; elsewhere (a fresh machine) poses fitted on first use, with the
fitter `python -m jpose.fit` uses, to the built-in synthetic sequences (`motion`), and
cached in jpose's cache folder (~/.cache/jpose, beside ANNY's conversion). Read either
with `priors.load_pose_library`.
"""

from __future__ import annotations

import os
import re

import jax.numpy as jnp
import numpy as np

from jpose.body import cache
from jpose.body import fit
from jpose.body import model as body_model
from jpose.body import motion
from jpose.body import priors
from jpose.body import smpl

LSP_FITS = os.path.join("smpl_fits", "lsp_orig_fits.npy")  # under $JPOSE_DATA_DIR.
# Bump when the sequences or the fit change, so old caches are fitted again.
VERSION = 1
# 4 actions x 2 sequences x 16 frames: 128 poses, fitted in ~15 s on a 2-core CPU
# (ANNY; MPJPE to the synthetic joints 6.8 mm mean, worst frame 10.7 mm).
SEQUENCES_PER_ACTION = 2
FRAMES_PER_SEQUENCE = 16
_FPS = 50.0
_SECONDS = 12.0  # as the built-in dataset's sequences.
_SEED = 0
_STEPS = 300  # `python -m jpose.fit`'s defaults, with a shape from 32 frames.
_SHAPE_FRAMES = 32
# No library to fit a Gaussian prior to here, so the prior is set by hand: its mean has
# the arms down (the fit starts there, as from the LSP fits' mean; from the T-pose, descent
# reached the arms through twisted limbs), 1 rad wide, and 0.2 rad for the joints whose
# twist the 17 joints do not see. Without it the wrists came out turned by 2.7 rad on
# average (the LSP fits: 0.3); with it 0.05, and the joints fit closer (8.6 -> 6.8 mm).
_SHOULDER_DOWN = 1.2  # rad about z (SMPL's left shoulder lowers with negative z).
_SIGMA = 1.0
_UNSEEN = ("left_ankle", "right_ankle", "left_foot", "right_foot", "left_collar",
           "right_collar", "head", "left_wrist", "right_wrist", "left_hand", "right_hand")
_UNSEEN_SIGMA = 0.2


def lsp_fits_path() -> str | None:
  """$JPOSE_DATA_DIR's LSP fits, or None where the variable or the file is missing."""
  root = os.environ.get("JPOSE_DATA_DIR")
  path = os.path.join(root, LSP_FITS) if root else ""
  return path if path and os.path.isfile(path) else None


def synthetic_targets() -> np.ndarray:
  """(N, 17, 3) Human3.6M-17 joints in mm: frames spread over the synthetic sequences."""
  num_frames = int(_FPS * _SECONDS)
  kept = np.linspace(0, num_frames - 1, FRAMES_PER_SEQUENCE).astype(int)
  targets = []
  for a, action in enumerate(motion.ACTIONS):
    for sequence in range(SEQUENCES_PER_ACTION):
      rng = np.random.default_rng([_SEED, a, sequence])
      targets.append(motion.animate(action, num_frames, _FPS, 1.0, rng)[kept])
  return np.concatenate(targets)


def start_prior() -> priors.GaussianPosePrior:
  """The hand-set Gaussian of the synthetic fit: arms down, unseen twists held near rest."""
  names = smpl.JOINT_NAMES
  mean = np.zeros((len(names), 3), np.float32)
  mean[names.index("left_shoulder"), 2] = -_SHOULDER_DOWN
  mean[names.index("right_shoulder"), 2] = _SHOULDER_DOWN
  sigma = np.full((len(names), 3), _SIGMA, np.float32)
  sigma[[names.index(n) for n in _UNSEEN]] = _UNSEEN_SIGMA
  return priors.GaussianPosePrior(mean=jnp.asarray(mean[1:].reshape(-1)),
                                  whitening=jnp.diag(jnp.asarray(1.0 / sigma[1:].reshape(-1))))


def fit_synthetic(model: body_model.BodyModel) -> fit.FitResult:
  """`model` fitted to `synthetic_targets()` (one shape, then every frame's pose)."""
  targets = synthetic_targets()
  return fit.fit_subject(model, targets, steps=_STEPS, chunk=len(targets),
                         shape_frames=_SHAPE_FRAMES, gaussian=start_prior())


def cache_path(model_name: str, cache_dir: str | None = None) -> str:
  """The synthetic fit's cache, keyed by the fitting model's name only: what is used of it
  is the poses, whose rotations mean the same on any SMPL-tree model (ANNY's included)."""
  safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_name)
  return os.path.join(cache.folder(cache_dir),
                      f"pose_library-synthetic-v{VERSION}-{safe}.npy")


def default_path(model: body_model.BodyModel | None = None, cache_dir: str | None = None) -> str:
  """The default library's file: the LSP fits, else the synthetic fit's cache (fitted
  with `model`, default ANNY, and written on first use, saying so in one line).

  The cache is an (N, 72 + B) .npy, SPIN's layout (the pose's axis-angles, then betas).
  """
  lsp = lsp_fits_path()
  if lsp:
    return lsp
  if model is None:
    from jpose.body import anny  # the conversion's scipy/zip code only where it is used.
    model = anny.load(cache_dir=cache_dir)
  path = cache_path(model.name, cache_dir)
  if os.path.isfile(path):
    return path
  result = fit_synthetic(model)
  num_frames = result.pose.shape[0]
  library = np.concatenate([result.pose.reshape(num_frames, -1), result.betas], axis=1)
  cache.write_atomically(path, lambda f: np.save(f, library.astype(np.float32)))
  print(f"jpose: fitted a pose library of {num_frames} poses (MPJPE "
        f"{np.nanmean(result.error):.1f} mm) to the built-in synthetic sequences -> {path} "
        "(first use; cached)", flush=True)
  return path
