"""DeepBase2: 4 blocks plus a linear 3D head after block 2 whose loss is added.

  python -m jpose.main --config configs/deepbase2.py --workdir /tmp/deepbase2
"""

from configs import common


def get_config(variant: str = ""):
  c = common.base_config()
  c.model.num_blocks = 4
  c.model.intermediate_head_after = 2
  c.train.num_steps = 4_900_000  # 200 epochs at batch 64.
  c.train.checkpoint_every = 50_000
  return common.tiny(c) if variant == "tiny" else c
