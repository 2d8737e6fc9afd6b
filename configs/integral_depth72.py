"""Kato et al.'s stage 1: the integral regressor with d = 72 depth bins over D = 1500 mm
around the root (ImageNet ResNet-50, 3 deconv layers of 4x4 kernels), trained on Human3.6M
mixed with COCO and MPII. Its per-frame 2D and depth feed the depth TCN
(configs/tcn243_depth.py). Kato et al. report 48.9 mm protocol #1.

  python -m jpose.main --config configs/integral_depth72.py --workdir /tmp/depth72 \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m \
      --config.data.images=h36m_images:train:2,coco_keypoints:train:1,mpii:train:1 \
      --config.model.pretrained=/path/to/resnet50-0676ba61.pth

Without --config.model.pretrained the run stops with an error naming the field
(--config.model.pretrained=none trains from scratch on purpose); the tiny variant starts
from random init.
"""

from configs import common


def get_config(variant: str = ""):
  c = common.integral_config(variant)
  if variant != "tiny":
    c.model.depth_bins = 72
  c.model.depth_range_mm = 1500.0
  c.model.pretrained_required = variant != "tiny"
  return c
