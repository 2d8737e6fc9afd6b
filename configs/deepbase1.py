"""DeepBase1: the Martinez lifter with 4 residual blocks instead of 2.

  python -m jpose.main --config configs/deepbase1.py --workdir /tmp/deepbase1
"""

from configs import common


def get_config(variant: str = ""):
  c = common.base_config()
  c.model.num_blocks = 4
  c.train.num_steps = 4_900_000  # 200 epochs at batch 64.
  c.train.checkpoint_every = 50_000
  return common.tiny(c) if variant == "tiny" else c
