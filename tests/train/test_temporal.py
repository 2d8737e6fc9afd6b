"""The temporal trainer: device-resident windows match the host pipeline, and every TCN
config trains and evaluates whole sequences."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import configs
from jpose.data import pipeline
from jpose.data import resident
from jpose.data import windows
from jpose.geometry import skeleton
from jpose.train import loop


@pytest.mark.parametrize("causal", [False, True])
def test_device_windows_match_the_host_pipeline(synthetic_train, causal):
  stats = pipeline.compute_norm_stats(synthetic_train)
  host = pipeline.make_dataset(synthetic_train, stats, 700, train=False, window=27,
                               causal=causal)[0]
  data = resident.ResidentData(*(jnp.asarray(a) for a in resident.from_sequences(synthetic_train)))
  ids = jnp.arange(700)
  windows_2d, windows_3d, _ = resident.gather_windows(data, ids, windows.window_offsets(27, causal))
  chex.assert_trees_all_equal(np.asarray(windows_2d), host["pose_2d"])
  # The target frame sits at the window's end (causal) or centre.
  chex.assert_trees_all_equal(np.asarray(windows_3d[:, 26 if causal else 13]), host["pose_3d"])
  # The first frame of the split starts its sequence: its window repeats it before itself.
  np.testing.assert_array_equal(np.asarray(windows_2d[0, :13]),
                                np.broadcast_to(synthetic_train.pose_2d[0], (13, 17, 2)))


def test_device_flips_match_the_host_pipeline(synthetic_train):
  stats = pipeline.compute_norm_stats(synthetic_train)
  host = pipeline.make_dataset(synthetic_train, stats, 700, train=False, window=27)[0]
  data = resident.ResidentData(*(jnp.asarray(a) for a in resident.from_sequences(synthetic_train)))
  ids = jnp.arange(700)
  windows_2d, windows_3d, _ = resident.gather_windows(data, ids, windows.window_offsets(27, False))
  flip = jnp.arange(700) % 2 == 0
  flipped = np.asarray(skeleton.mirror(windows_2d, data.camera_c[ids, 0], flip))
  # By hand, on the host's windows: x -> 2 c_x - x about each frame's principal point,
  # then left and right labels swapped.
  cx = synthetic_train.camera_c[synthetic_train.seq_index[:700], 0][:, None, None]
  perm = list(skeleton.H36M_17.flip_permutation)
  by_hand = np.stack([2 * cx - host["pose_2d"][..., 0], host["pose_2d"][..., 1]], -1)[..., perm, :]
  expected = np.where(np.asarray(flip)[:, None, None, None], by_hand, host["pose_2d"])
  np.testing.assert_allclose(flipped, expected, atol=1e-4)
  pose_3d = host["pose_3d"]
  by_hand = (pose_3d * [-1.0, 1.0, 1.0])[:, perm]
  np.testing.assert_allclose(np.asarray(skeleton.mirror(windows_3d[:, 13], where=flip)),
                             np.where(np.asarray(flip)[:, None, None], by_hand, pose_3d),
                             atol=1e-4)
  # The host pipeline mirrors its own batches (flip=True) as the device does.
  host_flips = pipeline.make_dataset(synthetic_train, stats, 64, flip=True, window=27)[0]
  indices = pipeline.make_dataset(synthetic_train, stats, 64, flip=True, window=27,
                                  indices_only=True)[0]
  ids, flip = jnp.asarray(indices["frame_id"]), jnp.asarray(indices["flip"])
  assert 0 < int(flip.sum()) < 64
  windows_2d, windows_3d, _ = resident.gather_windows(data, ids, windows.window_offsets(27, False))
  frames = resident.gather_frames(data, ids, flip)
  np.testing.assert_array_equal(np.asarray(skeleton.mirror(windows_2d, data.camera_c[ids, 0],
                                                           flip)), host_flips["pose_2d"])
  np.testing.assert_array_equal(np.asarray(frames["pose_3d"]), host_flips["pose_3d"])
  np.testing.assert_array_equal(np.asarray(frames["camera_up"]), host_flips["camera_up"])


def test_causal_offsets_end_at_the_target():
  np.testing.assert_array_equal(windows.window_offsets(3, True), [-2, -1, 0])
  np.testing.assert_array_equal(windows.window_offsets(3, False), [-1, 0, 1])


@pytest.mark.parametrize("name", ["tcn1", "tcn27", "tcn81", "tcn243", "tcn243_depth"])
def test_every_tcn_config_trains_and_evaluates_sequences(name, tfds_dir, tmp_path):
  config = configs.load(f"{name}:tiny")
  config.data.data_dir = tfds_dir
  results = loop.train_and_evaluate(config, str(tmp_path))
  with open(tmp_path / "eval_results.json") as f:
    saved = json.load(f)
  assert saved["step"] == 6 and saved["num_frames"] == results["num_frames"]
  # The final evaluation covers every frame of the 8 tiny test sequences (600 frames each).
  assert saved["num_frames"] == 8 * 600
  assert {"protocol1", "protocol2", "n_mpjpe", "mpjve"} <= set(saved)
  assert all(np.isfinite(v) for v in saved["mpjve"]["per_action"].values())
  assert saved["protocol2"]["frame_wise_mean"] <= saved["protocol1"]["frame_wise_mean"]


def test_bn_momentum_decays_from_start_to_end(synthetic_train):
  from jpose.train import registry
  config = configs.load("tcn27:tiny")
  trainer = registry.build(config, pipeline.compute_norm_stats(synthetic_train), 1000)
  config.train.num_steps = 100
  np.testing.assert_allclose(float(trainer.bn_momentum(0)), 0.1, rtol=1e-6)
  np.testing.assert_allclose(float(trainer.bn_momentum(50)), 0.01, rtol=1e-5)  # geometric mid
  np.testing.assert_allclose(float(trainer.bn_momentum(100)), 0.001, rtol=1e-5)


def test_sequence_predictions_keep_the_models_root(synthetic_train):
  # VideoPose3D zeroes only the target's root; a predicted root off the origin is error.
  from jpose.train import registry
  config = configs.load("tcn27:tiny")
  config.eval.flip_test = False
  trainer = registry.build(config, pipeline.compute_norm_stats(synthetic_train), 1000)
  state = trainer.init(jax.random.key(0))
  frames = synthetic_train.sequence(0)
  pose_2d = jnp.asarray(synthetic_train.pose_2d[frames][None, :60])
  pose_3d = jnp.asarray(synthetic_train.pose_3d[frames][None, :60])
  predicted = trainer.predict_sequences(state, pose_2d, pose_3d,
                                        jnp.asarray(synthetic_train.camera_c[:1, 0]))
  raw = trainer.model.apply({"params": state.params["lifter"],
                             "batch_stats": state.batch_stats["lifter"]},
                            trainer.model_inputs(pose_2d, pose_3d, state.norm), train=False,
                            strided=False) * 1000.0
  np.testing.assert_array_equal(np.asarray(predicted), np.asarray(raw))
  assert np.abs(np.asarray(predicted[..., 0, :])).max() > 1.0  # an untrained root, in mm
