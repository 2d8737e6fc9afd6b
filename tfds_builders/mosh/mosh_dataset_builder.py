"""SMPL pose/shape samples as tfds array_record: one record per pose (a mocap frame's MoSh
fit, or one image's SMPL fit), the real bodies an HMR discriminator learns from.

Reads every sample file under `manual_dir` (`mosh_files.find_files`: recursive, sorted,
Human3.6M test subjects S9 and S11 left out) and writes them in that order, each file's
rows in order. A file that cannot be read or holds a malformed field stops the build,
named, so a partial dataset is never cached as a finished one.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from jpose.formats import mosh_files


class Builder(tfds.core.GeneratorBasedBuilder):
  """SMPL poses (24 axis-angles) and betas (10) from neutrMosh, AMASS, mmhuman3d, SPIN."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: pose (72,), betas (10,), source file and row."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put any mix of these SMPL pose/shape files anywhere under `manual_dir` (subfolders are
  searched; each record keeps its file's path relative to manual_dir and its row):
    HMR's neutrMosh (github.com/akanazawa/hmr, the MoSh data its README points to): the
      folders neutrSMPL_CMU/, neutrSMPL_H3.6/, neutrSMPL_jointLim/ of `<subject>/<seq>.pkl`,
      each a pickled dict with 'poses' (N, 72) and 'betas' (10,). Folders named S9 or S11
      (Human3.6M's test subjects) are left out, as HMR did.
    AMASS (amass.is.tue.mpg.de, research licence; the SMPL+H or SMPL-X body data):
      `<dataset>/<subject>/<seq>_poses.npz` with 'poses' (N, 156 or 165) and 'betas' (16,).
      SMPL's 22 body joints are kept; its two hand joints are set to zero rotation.
      Each subject's `shape.npz` holds no poses and is skipped.
    mmhuman3d / mmpose mosh data: `.npz` with 'pose' (N, 72) and 'shape' (N, 10).
    SPIN's static fits (github.com/nkolot/SPIN, data/static_fits/*_fits.npy): (N, 82),
      72 pose values then 10 shape values.
  Poses are SMPL axis-angles, root first. Betas are kept as given: neutrMosh's are the
  neutral SMPL model's, AMASS's those of the file's own model (its 'gender' field).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__,
        features=tfds.features.FeaturesDict({
            "pose": tfds.features.Tensor(shape=(mosh_files.POSE_SIZE,), dtype=np.float32),
            "betas": tfds.features.Tensor(shape=(mosh_files.NUM_BETAS,), dtype=np.float32),
            "source": tfds.features.Text(),  # the file, relative to manual_dir
            "index": np.int32,  # the row in that file
        }),
        # Records keep the files' order, so a record can be traced to its file's row
        # by position and a rebuild from the same files is identical.
        disable_shuffling=True,
        homepage="https://amass.is.tue.mpg.de")

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = os.fspath(dl_manager.manual_dir)
    return {"train": self._generate_examples(root, mosh_files.find_files(root))}

  def _generate_examples(self, root, paths):
    for path in paths:
      source = os.path.relpath(path, root).replace(os.sep, "/")
      poses, betas = mosh_files.read_file(path)
      for index, (pose, beta) in enumerate(zip(poses, betas)):
        yield f"{source}/{index}", {"pose": pose, "betas": beta, "source": source,
                                    "index": index}
