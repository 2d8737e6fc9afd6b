"""The VAE lifter, trained supervised with a 3D loss and the KL term.

Adam at 2e-4, gradient values clipped at 1000 and norms at 2 (generator) and 1
(discriminator); flip augmentation; batch 2560; cyclic KL weight (beta) from 0 to 0.001.

  python -m jpose.main --config configs/vae_supervised.py --workdir /tmp/vae_supervised
  python -m jpose.main --config configs/vae_supervised.py --workdir /tmp/vae_supervised_h36m \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
"""

from configs import common


def get_config(variant: str = ""):
  return common.vae_config(mode="supervised", variant=variant)
