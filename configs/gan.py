"""GAN lifter: the DeepBase1 lifter as generator, a DeepBase1-shaped discriminator on 3D
poses, adversarial loss added to the supervised loss, alternating updates.

  python -m jpose.main --config configs/gan.py --workdir /tmp/gan
"""

from configs import common


def get_config(variant: str = ""):
  c = common.base_config()
  c.model.num_blocks = 4
  c.train.trainer = "gan"
  c.train.num_steps = 4_900_000  # 200 epochs at batch 64.
  c.train.checkpoint_every = 50_000
  return common.tiny(c) if variant == "tiny" else c
