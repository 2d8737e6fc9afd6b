"""Procedural 17-joint motion with Human3.6M bone lengths: the built-in dataset's
(`tfds_builders/synthetic_h36m`) and the default pose library's (`pose_library`) source.

A small forward-kinematics body (z up, the person faces +y in its own frame, right is +x)
is driven by smooth joint-angle curves for four motions: walking, arm swings, turning on
the spot, and crouching. Angles are clipped to human joint limits, and every curve is a
sum of sinusoids, so the motion is smooth at any frame rate. Deterministic given a seed.
"""

from __future__ import annotations

import numpy as np

# Mean bone lengths (mm) of the Human3.6M training subjects (measured on S1-S8 'Walking 1').
HIP_HALF_WIDTH = 136.0
THIGH = 451.0
SHIN = 446.0
ANKLE_HEIGHT = 100.0
SPINE = 241.0
SPINE_TO_THORAX = 255.0
THORAX_TO_NECK = 117.0
NECK_TO_HEAD = 115.0
SHOULDER_HALF_WIDTH = 151.0
UPPER_ARM = 282.0
FOREARM = 250.0

ACTIONS = ("Walking", "ArmSwing", "Turning", "Crouching")

# Joint limits in degrees: (min, max).
LIMITS = {"hip": (-30.0, 120.0), "knee": (0.0, 150.0), "shoulder": (-60.0, 170.0),
          "abduction": (0.0, 150.0), "elbow": (0.0, 145.0), "lean": (-15.0, 60.0)}


def _rot_x(a):
  c, s = np.cos(a), np.sin(a)
  o, z = np.ones_like(a), np.zeros_like(a)
  return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                   np.stack([z, s, c], -1)], -2)


def _rot_y(a):
  c, s = np.cos(a), np.sin(a)
  o, z = np.ones_like(a), np.zeros_like(a)
  return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                   np.stack([-s, z, c], -1)], -2)


def _rot_z(a):
  c, s = np.cos(a), np.sin(a)
  o, z = np.ones_like(a), np.zeros_like(a)
  return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                   np.stack([z, z, o], -1)], -2)


def _apply(rotation, vector):
  return np.einsum("tij,j->ti", rotation, np.asarray(vector, np.float64))


def _limit(name, degrees):
  lo, hi = LIMITS[name]
  return np.deg2rad(np.clip(degrees, lo, hi))


def _wobble(rng, t, amplitude, max_hz=0.7, terms=3):
  """A smooth random curve: a few low-frequency sinusoids with random phases."""
  freqs = rng.uniform(0.1, max_hz, terms)
  phases = rng.uniform(0, 2 * np.pi, terms)
  return amplitude * np.sum(np.sin(2 * np.pi * freqs * t[:, None] + phases), -1) / np.sqrt(terms)


def _body(angles, scale):
  """Forward kinematics: joint angles (radians, each (T,)) -> (T, 17, 3) body frame.

  Body frame: root at the origin, z up, facing +y, right +x.
  """
  t = angles["lean"].shape[0]
  s = scale
  joints = np.zeros((t, 17, 3))
  legs = {"R": (1, 2, 3, +1), "L": (4, 5, 6, -1)}
  for side, (hip, knee, foot, sign) in legs.items():
    joints[:, hip] = [sign * HIP_HALF_WIDTH * s, 0.0, 0.0]
    thigh_rot = _rot_x(angles[f"hip_{side}"]) @ _rot_y(sign * angles[f"hip_abd_{side}"])
    joints[:, knee] = joints[:, hip] + _apply(thigh_rot, [0, 0, -THIGH * s])
    shin_rot = thigh_rot @ _rot_x(-angles[f"knee_{side}"])
    joints[:, foot] = joints[:, knee] + _apply(shin_rot, [0, 0, -SHIN * s])
  trunk = _rot_x(-angles["lean"]) @ _rot_y(angles["side_lean"]) @ _rot_z(angles["twist"])
  joints[:, 7] = _apply(trunk, [0, 0, SPINE * s])
  joints[:, 8] = joints[:, 7] + _apply(trunk, [0, 0, SPINE_TO_THORAX * s])
  head_rot = trunk @ _rot_x(-angles["nod"])
  joints[:, 9] = joints[:, 8] + _apply(head_rot, [0, 0.25 * THORAX_TO_NECK * s, THORAX_TO_NECK * s])
  joints[:, 10] = joints[:, 9] + _apply(head_rot, [0, 0, NECK_TO_HEAD * s])
  arms = {"L": (11, 12, 13, -1), "R": (14, 15, 16, +1)}
  for side, (shoulder, elbow, wrist, sign) in arms.items():
    joints[:, shoulder] = joints[:, 8] + _apply(trunk, [sign * SHOULDER_HALF_WIDTH * s, 0, -30 * s])
    upper_rot = trunk @ _rot_x(angles[f"shoulder_{side}"]) @ _rot_y(-sign * angles[f"abd_{side}"])
    joints[:, elbow] = joints[:, shoulder] + _apply(upper_rot, [0, 0, -UPPER_ARM * s])
    fore_rot = upper_rot @ _rot_x(angles[f"elbow_{side}"])
    joints[:, wrist] = joints[:, elbow] + _apply(fore_rot, [0, 0, -FOREARM * s])
  return joints


def _standing_height(angles, scale):
  """Root height that keeps the lower foot at ANKLE_HEIGHT above the floor."""
  heights = []
  for side in ("R", "L"):
    hip, knee = angles[f"hip_{side}"], angles[f"knee_{side}"]
    heights.append(THIGH * np.cos(hip) + SHIN * np.cos(hip - knee))
  return scale * np.maximum(*heights) + ANKLE_HEIGHT


def animate(action: str, num_frames: int, fps: float, scale: float,
            rng: np.random.Generator) -> np.ndarray:
  """World-frame joints (T, 17, 3) in mm for one sequence of `action`."""
  if action not in ACTIONS:
    raise ValueError(f"unknown synthetic action '{action}'; choose from {ACTIONS}")
  t = np.arange(num_frames) / fps
  zeros = np.zeros_like(t)
  stride_hz = rng.uniform(0.8, 1.0)
  phase = 2 * np.pi * stride_hz * t + rng.uniform(0, 2 * np.pi)
  deg = {  # defaults: relaxed standing with small smooth variation.
      "hip_R": 5 + _wobble(rng, t, 3), "hip_L": 5 + _wobble(rng, t, 3),
      "knee_R": 8 + _wobble(rng, t, 3), "knee_L": 8 + _wobble(rng, t, 3),
      "hip_abd_R": 3 + zeros, "hip_abd_L": 3 + zeros,
      "shoulder_R": 5 + _wobble(rng, t, 5), "shoulder_L": 5 + _wobble(rng, t, 5),
      "abd_R": 10 + _wobble(rng, t, 3), "abd_L": 10 + _wobble(rng, t, 3),
      "elbow_R": 15 + _wobble(rng, t, 8), "elbow_L": 15 + _wobble(rng, t, 8),
      "lean": 3 + _wobble(rng, t, 2), "side_lean": _wobble(rng, t, 2),
      "twist": _wobble(rng, t, 4), "nod": 5 + _wobble(rng, t, 6),
  }
  heading = rng.uniform(0, 2 * np.pi) + _wobble(rng, t, 0.2)
  speed = 0.0  # mm/s along the heading.
  if action in ("Walking", "Turning"):
    gait = 1.0 if action == "Walking" else 0.4
    deg["hip_R"] = 8 + gait * 25 * np.sin(phase)
    deg["hip_L"] = 8 - gait * 25 * np.sin(phase)
    deg["knee_R"] = 10 + gait * 25 * (1 - np.cos(phase + 0.6 * np.pi)) / 2 * 2
    deg["knee_L"] = 10 + gait * 25 * (1 + np.cos(phase + 0.6 * np.pi)) / 2 * 2
    deg["shoulder_R"] = 3 - gait * 20 * np.sin(phase)
    deg["shoulder_L"] = 3 + gait * 20 * np.sin(phase)
    deg["twist"] = deg["twist"] + gait * 6 * np.sin(phase)
    if action == "Walking":
      speed = 1200.0 * stride_hz
      heading = heading + np.deg2rad(60) * t  # a 1 m-radius curve keeps the walker in view.
    else:
      heading = heading + np.deg2rad(rng.choice([-1, 1]) * rng.uniform(45, 90)) * t
      speed = 80.0
  elif action == "ArmSwing":
    arm_hz = rng.uniform(0.3, 0.6)
    arm = 2 * np.pi * arm_hz * t
    deg["shoulder_R"] = 50 + 70 * np.sin(arm)
    deg["shoulder_L"] = 50 + 70 * np.sin(arm + rng.choice([0.0, np.pi]))
    deg["abd_R"] = 50 + 45 * np.sin(0.5 * arm + 1.0)
    deg["abd_L"] = 50 + 45 * np.sin(0.5 * arm + 2.0)
    deg["elbow_R"] = 30 + 25 * np.sin(arm + 0.5)
    deg["elbow_L"] = 30 + 25 * np.sin(arm + 1.5)
  elif action == "Crouching":
    squat = (1 - np.cos(2 * np.pi * rng.uniform(0.15, 0.3) * t)) / 2  # 0 standing, 1 down.
    depth = rng.uniform(0.6, 1.0)
    deg["hip_R"] = deg["hip_L"] = 5 + 95 * depth * squat
    deg["knee_R"] = deg["knee_L"] = 5 + 115 * depth * squat
    deg["lean"] = 5 + 40 * depth * squat
    deg["shoulder_R"] = deg["shoulder_L"] = 10 + 60 * squat
    deg["elbow_R"] = deg["elbow_L"] = 20 + 40 * squat
  angles = {}
  for name, value in deg.items():
    kind = name.split("_")[0]
    limit = {"hip": "hip", "knee": "knee", "shoulder": "shoulder", "abd": "abduction",
             "elbow": "elbow", "lean": "lean"}.get(kind)
    if name.startswith("hip_abd"):
      limit = "abduction"
    angles[name] = _limit(limit, value) if limit else np.deg2rad(value)
  body = _body(angles, scale)
  heading = np.asarray(heading) + zeros
  # Walk along the heading (integrated so curves are smooth), starting near the centre.
  velocity = speed * np.stack([-np.sin(heading), np.cos(heading)], -1) / fps
  xy = np.cumsum(velocity, axis=0)
  xy = xy - xy.mean(axis=0) + rng.uniform(-200, 200, 2)
  root = np.concatenate([xy, _standing_height(angles, scale)[:, None]], -1)
  world = np.einsum("tij,tkj->tki", _rot_z(heading), body) + root[:, None, :]
  return world.astype(np.float32)


def look_at_camera(position, target, focal: float, principal=(512.0, 515.0),
                   k=(-0.2, 0.24, -0.0025), p=(-0.0015, -0.001)) -> dict[str, np.ndarray]:
  """A Human3.6M-like camera at `position` (mm, z up) looking at `target`."""
  position = np.asarray(position, np.float64)
  forward = np.asarray(target, np.float64) - position
  forward /= np.linalg.norm(forward)
  right = np.cross(forward, [0.0, 0.0, 1.0])
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  return {"R": np.stack([right, down, forward]), "T": position,
          "f": np.array([focal, focal]), "c": np.asarray(principal, np.float64),
          "k": np.asarray(k, np.float64), "p": np.asarray(p, np.float64)}


# Four cameras at the corners of the capture volume, about 1.5 m high and 5 m out, with
# Human3.6M's focal length (about 1145 px) and its 1000 x 1000 images.
CAMERA_IDS = ("synth_0", "synth_1", "synth_2", "synth_3")


def cameras() -> dict[str, dict[str, np.ndarray]]:
  out = {}
  for i, camera_id in enumerate(CAMERA_IDS):
    angle = np.deg2rad(45 + 90 * i)
    position = [5000 * np.cos(angle), 5000 * np.sin(angle), 1500 + 150 * (i % 2)]
    out[camera_id] = look_at_camera(position, [0.0, 0.0, 900.0], focal=1145.0 + 2 * i)
  return out
