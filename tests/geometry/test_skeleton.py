"""Joint layouts and the maps between them."""

import json
import os

import numpy as np

from jpose.formats import h36m_files
from jpose.geometry import skeleton


def test_h36m_17_subset_names():
  names = skeleton.H36M_17.joint_names
  assert names[0] == "Hip" and names[9] == "Neck/Nose" and names[16] == "RWrist"
  assert len(names) == 17 and skeleton.H36M_17.parents[0] == -1


def _torso_fraction(points, index):
  """(N, 17, D) H36M-17 points -> (N,) where joint `index` lies along the torso: 0 at the
  shoulders' midpoint, 1 at the hips' midpoint (negative above the shoulders)."""
  names = skeleton.H36M_17.joint_names
  shoulders = (points[:, names.index("LShoulder")] + points[:, names.index("RShoulder")]) / 2
  hips = (points[:, names.index("LHip")] + points[:, names.index("RHip")]) / 2
  axis = hips - shoulders
  return np.sum((points[:, index] - shoulders) * axis, -1) / np.sum(axis * axis, -1)


def test_mpii_annotation_joints_lie_where_their_h36m_namesakes_lie(real_data_dir, h36m_dir):
  """On the 5 real MPII fixture people, each joint the annotation map puts on the H36M
  torso line (hip, spine, thorax, neck/nose, head) sits where that H36M joint sits on
  Human3.6M ground truth (S9 Walking, every 50th frame), as a fraction of the torso."""
  poses = h36m_files.read_positions_3d(os.path.join(h36m_dir, "S9/MyPoses/3D_positions/Walking.h5"))
  people = json.load(open(os.path.join(real_data_dir, "mmpose_fixtures/mpii/test_mpii.json")))
  mpii = skeleton.convert_joints(np.array([p["joints"] for p in people], np.float64),
                                 skeleton.MPII_ANNOTATION_TO_H36M_17)
  names = skeleton.H36M_17.joint_names
  checked = []
  for name in ("Hip", "Spine", "Thorax", "Neck/Nose", "Head"):
    j = names.index(name)
    if skeleton.MPII_ANNOTATION_TO_H36M_17[j] < 0:
      continue
    # Measured: H36M thorax -0.154, head -0.628; MPII's upper neck -0.069 and head top
    # -0.660 on average. The old map put MPII's thorax (0.000) in the spine (0.414).
    expected = _torso_fraction(poses[::50], j).mean()
    found = _torso_fraction(mpii, j).mean()
    assert abs(found - expected) < 0.15, (name, found, expected)
    checked.append(name)
  assert checked == ["Hip", "Thorax", "Head"]


def test_lsp_and_coco_maps_send_each_named_joint_to_its_namesake():
  aliases = {"RAnkle": "RFoot", "LAnkle": "LFoot", "Neck": "Thorax", "HeadTop": "Head",
             "Nose": "Neck/Nose"}
  for source, mapping in ((skeleton.LSP_14, skeleton.LSP_14_TO_H36M_17),
                          (skeleton.COCO_17, skeleton.COCO_17_TO_H36M_17)):
    for target, index in zip(skeleton.H36M_17.joint_names, mapping):
      if index >= 0:
        name = source.joint_names[index]
        assert aliases.get(name, name) == target, (source.name, name)


def test_convert_marks_absent_joints_nan():
  mpii = np.arange(32, dtype=np.float32).reshape(16, 2)
  h36m = skeleton.convert_joints(mpii, skeleton.MPII_16_TO_H36M_17)
  assert h36m.shape == (17, 2)
  assert np.isnan(h36m[skeleton.NECK_NOSE]).all()
  np.testing.assert_array_equal(h36m[0], mpii[6])  # pelvis -> Hip


def test_flip_is_an_involution_that_swaps_sides():
  perm = skeleton.H36M_17.flip_permutation
  np.testing.assert_array_equal(perm[perm], np.arange(17))
  names = skeleton.H36M_17.joint_names
  for i, j in enumerate(perm):
    if i != j:
      assert names[i][1:] == names[j][1:] and {names[i][0], names[j][0]} == {"L", "R"}


def test_mirror_mirrors_and_swaps_sides(synthetic_train):
  pose_3d = synthetic_train.pose_3d[:5]
  flipped = np.asarray(skeleton.mirror(pose_3d))
  np.testing.assert_array_equal(skeleton.mirror(flipped), pose_3d)
  right, left = 16, 13  # RWrist, LWrist
  np.testing.assert_array_equal(flipped[:, left, 0], -pose_3d[:, right, 0])
  np.testing.assert_array_equal(flipped[:, left, 1:], pose_3d[:, right, 1:])
  pose_2d = synthetic_train.pose_2d[:5]
  cx = 512.0
  np.testing.assert_allclose(skeleton.mirror(skeleton.mirror(pose_2d, cx), cx), pose_2d,
                             atol=1e-4)
  np.testing.assert_allclose(skeleton.mirror(pose_2d, cx)[:, left, 0],
                             2 * cx - pose_2d[:, right, 0], atol=1e-4)
  assert skeleton.H36M_17.joint_names[left] == "LWrist"


def test_mirror_takes_one_centre_and_flag_per_example():
  windows = np.random.default_rng(0).uniform(0, 1000, (3, 5, 17, 2)).astype(np.float32)
  centre = np.array([100.0, 500.0, 0.0], np.float32)
  flip = np.array([True, False, True])
  out = np.asarray(skeleton.mirror(windows, centre, flip))
  perm = list(skeleton.H36M_17.flip_permutation)
  np.testing.assert_array_equal(out[1], windows[1])
  for b in (0, 2):
    np.testing.assert_array_equal(out[b, ..., 0], (2 * centre[b] - windows[b, ..., 0])[:, perm])
    np.testing.assert_array_equal(out[b, ..., 1], windows[b][:, perm, 1])
