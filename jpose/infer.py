"""3D poses from your own 2D keypoints (or video): lift them with a trained workdir.

  python -m jpose.infer --workdir /tmp/tcn243_coco --keypoints results.json \
      --video clip.mp4 --out /tmp/lifted
  python -m jpose.infer --workdir /tmp/martinez_coco --keypoints openpose_json/ --out /tmp/l
  python -m jpose.infer --workdir /tmp/tcn243_coco --video clip.mp4 \
      --blazepose_model pose_landmark_full.tflite --out /tmp/lifted

Keypoints are COCO-17, as most 2D detectors write them: a COCO results or annotation
JSON, OpenPose JSON (one file per frame, or their folder) or a numpy array
(`jpose.formats.keypoints`). Joints scoring under --score_threshold are not trusted: they
are interpolated over time from the frames where that joint was seen (and reported), and
frames with nobody in them are filled the same way. Writes poses_3d.npz, poses_3d.json
and, unless --noanimation, animation.mp4: the 2D over the video frame beside the rotating
3D skeleton.

`jpose.inference.lifting.lift_function` is the one path from keypoints to 3D;
`jpose.export` serialises it.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
import ml_collections
import numpy as np
import tqdm

from jpose import cli
from jpose.inference import blazepose
from jpose.formats import keypoints as keypoint_files
from jpose.formats import video as video_lib
from jpose.evaluate import animation as animation_lib
from jpose.inference import lifting
from jpose.geometry import skeleton
from jpose.train import loop

FLAGS = flags.FLAGS


def clean_track(track: keypoint_files.KeypointTrack, threshold: float, interpolate: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
  """Detector output -> (points (T, 17, 2), scores (T, 17) of 1 where a model may read the
  joint, guessed (T, 17) bool: interpolated joints) and a report of what was done."""
  track = keypoint_files.drop_low_confidence(track, threshold)
  absent = np.isnan(track.points[..., 0])
  points, guessed = (keypoint_files.fill_missing(track.points) if interpolate
                     else (track.points, np.zeros_like(absent)))
  usable = ~np.isnan(points[..., 0])
  guessed &= usable  # a joint never seen stays absent: nothing was guessed.
  never = [skeleton.COCO_17.joint_names[j] for j in np.flatnonzero(~usable.any(axis=0))]
  report = {
      "frames": int(len(points)),
      "frames_without_person": int(np.sum(track.people == 0)),
      "frames_with_several_people": int(np.sum(track.people > 1)),
      "joints_below_threshold_or_missing": int(absent.sum()),
      "joints_interpolated": int(guessed.sum()),
      "joints_never_seen": never,
      "score_threshold": threshold,
  }
  return points, usable.astype(np.float32), guessed, report


def write_outputs(out_dir: str, poses_3d: np.ndarray, points: np.ndarray, guessed: np.ndarray,
                  track: keypoint_files.KeypointTrack, report: dict, workdir: str) -> list[str]:
  """poses_3d.npz and poses_3d.json in out_dir; returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  npz = os.path.join(out_dir, "poses_3d.npz")
  np.savez(npz, poses_3d=poses_3d.astype(np.float32), keypoints_2d=points.astype(np.float32),
           interpolated=guessed, frame_ids=np.asarray([str(f) for f in track.frame_ids]),
           joint_names=np.asarray(skeleton.H36M_17.joint_names),
           keypoint_names=np.asarray(skeleton.COCO_17.joint_names))
  frames = [{"frame_id": _jsonable(f), "pose_3d": np.round(p, 2).tolist(),
             "interpolated_keypoints": [skeleton.COCO_17.joint_names[j]
                                        for j in np.flatnonzero(g)]}
            for f, p, g in zip(track.frame_ids, poses_3d, guessed)]
  path = os.path.join(out_dir, "poses_3d.json")
  with open(path, "w") as f:
    json.dump({"workdir": os.path.abspath(workdir), "source": track.source,
               "units": "mm, camera frame (x right, y down, z away), pelvis at the origin",
               "joint_names": list(skeleton.H36M_17.joint_names), "report": report,
               "frames": frames}, f)
  return [npz, path]


def _jsonable(value):
  return value.item() if isinstance(value, np.generic) else value


def define_flags() -> None:
  """The command line (defined only when run as a command, so that importing the
  module next to other absl commands never clashes)."""
  flags.DEFINE_string("workdir", None, "A trained lifter, TCN or VAE workdir.")
  flags.DEFINE_string("config", None, "The run's config file[:variant], for workdirs "
      "without config.json (default: the workdir's config.json).")
  flags.DEFINE_string("keypoints", None, "COCO-17 keypoints: COCO results/"
      "annotation JSON, OpenPose JSON (file or folder), .npy/.npz.")
  flags.DEFINE_string("video", None, "The video the keypoints come from: drawn under "
      "them in the animation, and read by --blazepose_model.")
  flags.DEFINE_string("blazepose_model", None, "pose_landmark_full.tflite: detect "
      "keypoints in --video (pip install -e '.[detector]').")
  flags.DEFINE_string("out", None, "Output folder.")
  flags.DEFINE_float("score_threshold", 0.3, "Joints scoring under this are "
      "interpolated from neighbouring frames, not trusted.")
  flags.DEFINE_enum("frames", "sequence", ["sequence", "images"], "sequence: integer "
      "frame ids are one video's frames (gaps are missing frames); "
      "images: unrelated images, none interpolated from another.")
  flags.DEFINE_enum("person", "track", ["track", "highest_score"], "Which person to "
      "lift where a frame has several.")
  flags.DEFINE_float("fps", None, "Frame rate of the animation (default: the video's, "
      "else 25).")
  flags.DEFINE_bool("animation", True, "Write animation.mp4.")


def _detect(video: video_lib.VideoFrames, model_path: str) -> keypoint_files.KeypointTrack:
  detector = blazepose.BlazePose(model_path)
  found = [detector(frame) for frame in tqdm.tqdm(video, total=video.num_frames, desc="detect")]
  found = np.stack(found).astype(np.float32)
  return keypoint_files.KeypointTrack(
      points=found[..., :2], scores=found[..., 2], frame_ids=list(range(len(found))),
      image_size=video.size, people=np.ones(len(found), np.int32), source=video.path)


def check_consecutive(path: str, track: keypoint_files.KeypointTrack, frames: str) -> None:
  """With frames="sequence", refuses integer frame ids that are not consecutive (a COCO
  annotation file's unrelated images): lifting them as a video would interpolate and
  smooth across different people."""
  ids = list(track.frame_ids)
  if frames != "sequence" or len(ids) < 2:
    return
  if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in ids):
    return  # named frames ("f2.jpg"): ordered by name, as read_keypoints documents
  if any(int(b) != int(a) + 1 for a, b in zip(ids, ids[1:])):
    shown = ", ".join(str(i) for i in ids[:4]) + (", ..." if len(ids) > 4 else "")
    raise ValueError(f"{path}: image ids {shown} are not consecutive frames of one video; "
                     "if these are separate images rather than frames of one video, pass "
                     "--frames=images")


def run(workdir: str, out_dir: str, keypoints: str | None = None, video: str | None = None,
        blazepose_model: str | None = None,
        config: ml_collections.ConfigDict | str | None = None,
        score_threshold: float = 0.3, frames: str = "sequence", person: str = "track",
        fps: float | None = None, animation: bool = True) -> dict:
  """The command, as a function (notebooks and tests call it). Returns the report."""
  if keypoints is None and not (video and blazepose_model):
    raise ValueError("no keypoints: pass --keypoints (the COCO-17 output of any 2D detector: "
                     "a COCO results JSON, OpenPose JSON or .npy), or --video with "
                     "--blazepose_model=pose_landmark_full.tflite to detect them here")
  config, trainer, state = loop.load_trained(workdir, config)
  lifting.check_liftable(config)  # before a long detection, not after it
  video_frames = video_lib.read_video(video) if video else None
  track = (keypoint_files.read_keypoints(keypoints, frames=frames, person=person) if keypoints
           else _detect(video_frames, blazepose_model))
  if keypoints:
    check_consecutive(keypoints, track, frames)
  points, usable, guessed, report = clean_track(track, score_threshold,
                                                interpolate=frames == "sequence")
  for name in report["joints_never_seen"]:
    print(f"jpose.infer: {name} is never seen above the threshold; the model reads it as "
          "absent")
  poses_3d = lifting.lift_track(config, trainer, state, np.nan_to_num(points), usable)
  paths = write_outputs(out_dir, poses_3d, points, guessed, track, report, workdir)
  if animation:
    size = video_frames.size if video_frames else (track.image_size or _extent(points))
    rate = fps or (video_frames.fps if video_frames else 25.0)
    paths.append(animation_lib.write_animation(
        os.path.join(out_dir, "animation.mp4"), poses_3d, points, frames=video_frames,
        image_size=size, fps=rate, missing=guessed, title=os.path.basename(workdir)))
  report["written"] = paths
  print(f"jpose.infer: {report['frames']} frames ({report['frames_without_person']} without a "
        f"person, {report['joints_interpolated']} joints interpolated); wrote "
        + ", ".join(paths))
  return report


def _extent(points: np.ndarray) -> tuple[int, int]:
  """A canvas size holding every keypoint, for animations without a video."""
  top = np.nanmax(points.reshape(-1, 2), axis=0)
  return int(np.ceil(top[0] * 1.05)) + 1, int(np.ceil(top[1] * 1.05)) + 1


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax's per-checkpoint INFO lines
  try:
    run(FLAGS.workdir, FLAGS.out, FLAGS.keypoints, FLAGS.video, FLAGS.blazepose_model,
        FLAGS.config, FLAGS.score_threshold, FLAGS.frames, FLAGS.person, FLAGS.fps,
        FLAGS.animation)
  except (FileNotFoundError, ValueError, ImportError) as e:
    cli.fail("jpose.infer", cli.message(e))


if __name__ == "__main__":
  define_flags()
  cli.run("jpose.infer", main, required=("workdir", "out"))
