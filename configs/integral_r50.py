"""Integral pose regression (Sun et al. 2018): ImageNet ResNet-50, 3 deconv layers, 64^3
volumes from 256x256 crops, integral L1, Human3.6M and MPII mixed 50/50.

Sun et al. report 49.6 mm protocol #1 on Human3.6M. The full run on real images (a GPU or
TPU; build the image records first with `python -m jpose.prepare`):

  python -m jpose.main --config configs/integral_r50.py --workdir /tmp/integral_r50 \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m \
      --config.data.images=h36m_images:train:1,mpii:train:1 \
      --config.model.pretrained=/path/to/resnet50-0676ba61.pth

The ImageNet weights are part of the recipe: without --config.model.pretrained the run
stops with an error naming the field; --config.model.pretrained=none trains from scratch
on purpose. Without --config.data.images it trains on people rendered at the poses of
data.name. Evaluation averages each crop with its mirror image (eval.flip_test), as Sun
et al. test. The tiny variant (ResNet-18 at 64 px, a smoke run) starts from random init
and predicts without the flip:

  python -m jpose.main --config configs/integral_r50.py:tiny --workdir /tmp/tiny  # smoke
"""

from configs import common


def get_config(variant: str = ""):
  c = common.integral_config(variant)
  c.model.pretrained_required = variant != "tiny"
  c.data.augment = "sun_2018"  # Sun et al.'s augmentation, as their code draws it.
  # Sun et al. test with the mirrored crop averaged in (their test.py: flip_test=True);
  # the tiny variant keeps one forward pass.
  c.eval.flip_test = variant != "tiny"
  return c
