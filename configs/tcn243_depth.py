"""The second stage of Kato et al.'s two-stage video model: the 243-frame TCN reading 2D
pose plus per-joint root-relative depth (normalised by D = 1500 mm), with Gaussian noise
(sigma 0.1) on both during training.

The first stage (a per-frame integral regressor) is not in jpose yet, so test-time depth
is ground truth plus Gaussian noise as its stand-in (eval.depth_noise, normalised units).

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
