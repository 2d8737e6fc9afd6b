"""The integral regressor sized for a CPU: ResNet-18 from scratch at 128x128, a deconv head
of 128 channels (256 puts 62% of the step's FLOPs in the head at this size) and 32^2 x 32
volumes, batch 32, on people rendered at Human3.6M's real poses and cameras. RESULTS.md
holds its learning curve on 2 CPU cores (about 20 images/s).

  python -m jpose.main --config configs/integral_r18_cpu.py --workdir /tmp/integral_cpu \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
"""

from configs import common


def get_config(variant: str = ""):
  c = common.integral_config(variant)
  if variant == "tiny":
    return c
  c.model.resnet_depth = 18
  c.model.depth_bins = 32
  c.model.head_features = 128
  c.data.crop_size = 128
  c.train.batch_size = 32
  c.train.num_steps = 600
  c.train.lr_decay_rate = 0.1
  c.train.lr_decay_steps = 500
  c.train.checkpoint_every = 150
  c.train.eval_every = 150
  c.train.log_every = 50
  c.eval.batch_size = 64
  c.eval.frame_stride = 256  # 2,060 test poses per curve point.
  c.eval.final_frame_stride = 64  # 8,237 test poses.
  return c
