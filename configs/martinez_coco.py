"""The Martinez et al. 2017 baseline, reading COCO-17 keypoints: for `jpose.infer` on the
output of any COCO-format 2D detector (mmpose, rtmlib, Detectron2, YOLO pose, BlazePose).

Trained on Human3.6M's 2D mapped to the 13 joints COCO shares with it (pelvis, spine,
thorax and head top are never read; COCO's nose is Human3.6M's Neck/Nose), centred on the
hips and scaled to unit size per frame, with Gaussian input noise (sigma 0.1) and 10% of
joints dropped, as a detector misses them (`common.coco_inputs`).

  python -m jpose.main --config configs/martinez_coco.py --workdir /tmp/martinez_coco \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
  python -m jpose.infer --workdir /tmp/martinez_coco --keypoints results.json --out /tmp/lifted
"""

from configs import common
from configs import martinez


def get_config(variant: str = ""):
  return common.coco_inputs(martinez.get_config(variant))
