"""The VAE lifter, trained unsupervised from 2D poses alone by random-rotation
reprojection against a 2D pose discriminator.

Adam at 2e-4, gradient values clipped at 1000 and norms at 2 (generator) and 1
(discriminator); flip augmentation; batch 2560; cyclic KL weight (beta) from 0 to 0.001.
Beyond the seed: rotations about the world's vertical with pinhole reprojection (which
tell a pose from its depth mirror image) and Chen et al.'s lift-back consistency term.

  python -m jpose.main --config configs/vae_unsupervised.py --workdir /tmp/vae_unsupervised
  python -m jpose.main --config configs/vae_unsupervised.py --workdir /tmp/vae_unsupervised_h36m \
      --config.data.name=h36m --config.data.manual_dir=/path/to/h36m
"""

from configs import common


def get_config(variant: str = ""):
  return common.vae_config(mode="unsupervised", variant=variant)
