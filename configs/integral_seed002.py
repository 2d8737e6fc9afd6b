"""Seed 002's integral regression: ResNet-50 from scratch (torchvision's init), integral L1
alone for the first half, then plus the Gaussian-cube heatmap BCE (11^3 voxels).

Seed 002 reports 94.4 mm (integral only) -> 92.4 mm (plus heatmap) on 312 k images.

  python -m jpose.main --config configs/integral_seed002.py --workdir /tmp/seed002 \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
  # integral only, the comparison's other arm:
  python -m jpose.main --config configs/integral_seed002.py --workdir /tmp/seed002_l1 \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m \
      --config.integral.heatmap_weight=0
"""

from configs import common


def get_config(variant: str = ""):
  c = common.integral_config(variant)
  c.model.pretrained = ""
  c.integral.heatmap_weight = 1.0
  c.integral.heatmap_start_step = c.train.num_steps // 2
  return c
