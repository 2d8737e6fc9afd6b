"""Integral pose regression (Sun et al. 2018): ImageNet ResNet-50, 3 deconv layers, 64^3
volumes from 256x256 crops, integral L1, Human3.6M and MPII mixed 50/50.

Sun et al. report 49.6 mm protocol #1 on Human3.6M. The full run on real images (a GPU or
TPU; build the image records first with `python -m jpose.prepare`):

  python -m jpose.main --config configs/integral_r50.py --workdir /tmp/integral_r50 \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m \
      --config.data.images=h36m_images:train:1,mpii:train:1 \
      --config.model.pretrained=/path/to/resnet50-0676ba61.pth

Without --config.data.images it trains on people rendered at the poses of data.name:

  python -m jpose.main --config configs/integral_r50.py:tiny --workdir /tmp/tiny  # smoke
"""

from configs import common


def get_config(variant: str = ""):
  return common.integral_config(variant)
