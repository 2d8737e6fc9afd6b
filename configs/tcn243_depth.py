"""The second stage of Kato et al.'s two-stage video model: the 243-frame TCN reading 2D
pose plus per-joint root-relative depth (normalised by D = 1500 mm), with Gaussian noise
(sigma 0.1) on both during training.

By default the depth input is the ground truth's, with Gaussian noise at test time as a
first stage's stand-in (eval.depth_noise, normalised units). With a real first stage
(`python -m jpose.predict` on an integral run) the TCN reads its 2D and depth instead:
--config.data.input_2d=stage1 --config.data.stage1_dir=<run>/stage1
--config.eval.depth_noise=0 (README: the two-stage video model).

  python -m jpose.main --config configs/tcn243_depth.py --workdir /tmp/tcn243_depth
  python -m jpose.main --config configs/tcn243_depth.py --workdir /tmp/tcn243_depth_h36m \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m --config.data.input_2d=sh
"""

from configs import common


def get_config(variant: str = ""):
  c = common.temporal_config(receptive_field=243, variant=variant)
  c.model.input_depth = True
  c.model.noise_depth = 0.1
  c.eval.depth_noise = 0.05  # 75 mm: the order of a per-frame depth estimator's error.
  return c
