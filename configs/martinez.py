"""Martinez et al. 2017, "A simple yet effective baseline for 3d human pose estimation".

Two residual blocks of width 1024 with batch norm, dropout 0.5 and max-norm; Adam 1e-3
decayed by 0.96 every 100k steps; batch 64.

  python -m jpose.main --config configs/martinez.py --workdir /tmp/martinez
  python -m jpose.main --config configs/martinez.py --workdir /tmp/martinez_h36m \
      --config.data.name=h36m --config.data.manual_dir=../shared/data/h36m
  python -m jpose.main --config configs/martinez.py:tiny --workdir /tmp/tiny   # smoke test
"""

from configs import common


def get_config(variant: str = ""):
  c = common.base_config()
  c.model.num_blocks = 2
  # 200 epochs of Human3.6M's 1.56 M training poses at batch 64, as in the paper.
  c.train.num_steps = 4_900_000
  c.train.checkpoint_every = 50_000
  return common.tiny(c) if variant == "tiny" else c
