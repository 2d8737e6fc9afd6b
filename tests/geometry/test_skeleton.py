"""Joint layouts and the maps between them."""

import numpy as np

from jpose.geometry import skeleton


def test_h36m_17_subset_names():
  names = skeleton.H36M_17.joint_names
  assert names[0] == "Hip" and names[9] == "Neck/Nose" and names[16] == "RWrist"
  assert len(names) == 17 and skeleton.H36M_17.parents[0] == -1


def test_every_map_sends_each_named_joint_to_its_namesake():
  aliases = {"RAnkle": "RFoot", "LAnkle": "LFoot", "Pelvis": "Hip", "Neck": "Thorax",
             "HeadTop": "Head", "Nose": "Neck/Nose"}
  for source, mapping in ((skeleton.MPII_16, skeleton.MPII_16_TO_H36M_17),
                          (skeleton.LSP_14, skeleton.LSP_14_TO_H36M_17),
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
