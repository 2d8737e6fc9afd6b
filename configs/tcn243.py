"""VideoPose3D's dilated TCN with a receptive field of 243 frames, on 2D pose input.

Adam with AMSGrad at 1e-3, decayed by 0.95 per epoch; batch-norm momentum 0.1 -> 0.001;
MPJPE loss; flip augmentation in training and flip averaging at test; Gaussian input
noise (sigma 0.1 in normalised units, as in Kato et al.); batch 1024; 80 epochs.

  python -m jpose.main --config configs/tcn243.py --workdir /tmp/tcn243
  python -m jpose.main --config configs/tcn243.py --workdir /tmp/tcn243_h36m \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
  python -m jpose.main --config configs/tcn243.py:tiny --workdir /tmp/tiny   # smoke test

On one GPU (an H200 steps at 222,000 samples/s in bfloat16: the 80 epochs in ~9 min):

  python -m jpose.main --config configs/tcn243.py --workdir /tmp/tcn243_gpu \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m \
      --config.train.compute_dtype=bfloat16 --config.train.steps_per_dispatch=10
"""

from configs import common


def get_config(variant: str = ""):
  return common.temporal_config(receptive_field=243, variant=variant)
