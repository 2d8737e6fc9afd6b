"""synthetic_h36m: the built-in default dataset, same schema and splits as `h36m`.

Procedurally animated skeletons (see `jpose/body/motion.py`) seen through four Human3.6M-like
cameras, so `python -m jpose.main` runs on a fresh machine with nothing to download.
`pose_2d_sh` is the ground-truth projection plus Gaussian detector noise (NaN for
Neck/Nose, as with the real detections).
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from jpose.body import motion
from jpose.formats import records
from jpose.geometry import skeleton

SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
FPS = 50.0
SEED = 0
FRAMES_PER_SEQUENCE = 600  # 12 s at 50 fps.
TRIALS = ("", " 1")
DETECTOR_NOISE_PX = 5.0


class Builder(tfds.core.GeneratorBasedBuilder):
  """Synthetic Human3.6M-format sequences: 7 subjects x 4 actions x 2 trials x 4 cameras."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Walking, arm swings, turning and crouching."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description=__doc__, features=records.features(),
        metadata=tfds.core.MetadataDict(missing_files=[], missing_detections=[], seed=SEED))

  def _split_generators(self, dl_manager):
    return {split: self._generate_examples(subjects) for split, subjects in SUBJECTS.items()}

  def _generate_examples(self, subjects):
    cameras = motion.cameras()
    all_subjects = SUBJECTS["train"] + SUBJECTS["test"]
    for subject in subjects:
      index = all_subjects.index(subject)
      body_scale = np.random.default_rng([SEED, index]).uniform(0.92, 1.08)
      for a, action in enumerate(motion.ACTIONS):
        for trial_index, trial in enumerate(TRIALS):
          rng = np.random.default_rng([SEED, index, a, trial_index])
          world = motion.animate(action, FRAMES_PER_SEQUENCE, FPS, body_scale, rng)
          for camera_id, camera in cameras.items():
            record = records.sequence_record(
                subject=subject, action=action + trial, camera_id=camera_id, fps=FPS,
                camera=camera, pose_3d_world=world,
                pose_2d_sh=np.zeros(world.shape[:2] + (2,), np.float32))
            noise = rng.normal(0.0, DETECTOR_NOISE_PX, record["pose_2d_gt"].shape)
            detections = (record["pose_2d_gt"] + noise).astype(np.float32)
            detections[:, skeleton.NECK_NOSE] = np.nan
            record["pose_2d_sh"] = detections
            yield f"{subject}/{action}{trial}/{camera_id}", record
