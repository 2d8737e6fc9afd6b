"""Without a mean-parameter file HMR starts from a built-in neutral Theta (issue 27.1)."""

import numpy as np

import configs
from jpose.body import lbs
from jpose.models import hmr as hmr_model
from jpose.train import hmr as hmr_trainer


def test_neutral_theta_is_hmr_flip_zero_betas_framing_camera():
  theta = hmr_model.neutral_theta()
  camera, pose, betas = np.split(theta, [hmr_model.NUM_CAMERA,
                                         hmr_model.NUM_CAMERA + hmr_model.NUM_POSE])
  assert theta.shape == (85,) and theta.dtype == np.float32
  np.testing.assert_array_equal(camera, np.float32([0.9, 0.0, 0.0]))
  np.testing.assert_array_equal(betas, np.zeros(10))
  np.testing.assert_array_equal(pose[3:], np.zeros(69))
  # The global rotation turns SMPL's up (+y) into the image's up (-y) and keeps x.
  rotation = np.asarray(lbs.rodrigues(pose[:3].reshape(1, 3)))[0]
  np.testing.assert_allclose(rotation @ [0.0, 1.0, 0.0], [0.0, -1.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(rotation @ [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], atol=1e-6)


def test_no_file_and_no_data_dir_means_the_neutral_start(monkeypatch):
  monkeypatch.delenv("JPOSE_DATA_DIR", raising=False)
  config = configs.load("hmr_hybrid:tiny")
  assert hmr_trainer.mean_params_path(config) == ""
  monkeypatch.setenv("JPOSE_DATA_DIR", "/data")
  assert hmr_trainer.mean_params_path(config).startswith("/data/")
