"""VideoPose3D's 243-frame TCN reading COCO-17 keypoints: for `jpose.infer` on videos whose
2D comes from any COCO-format detector, as VideoPose3D's in-the-wild model reads
Detectron's COCO keypoints.

Trained on Human3.6M's 2D mapped to the 13 joints COCO shares with it, centred on the hips
and scaled to unit size per frame, with Gaussian input noise (sigma 0.1) and 10% of joints
dropped (`common.coco_inputs`); otherwise `tcn243.py`'s recipe.

  python -m jpose.main --config configs/tcn243_coco.py --workdir /tmp/tcn243_coco \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
  python -m jpose.infer --workdir /tmp/tcn243_coco --keypoints results.json \
      --video clip.mp4 --out /tmp/lifted
"""

from configs import common


def get_config(variant: str = ""):
  return common.coco_inputs(common.temporal_config(receptive_field=243, variant=variant))
