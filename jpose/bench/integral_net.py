"""What an image trainer's step costs without its inputs: a ResNet integral pose net's
jitted forward + backward and Adam update on one fixed batch (images/s), to set the
input stages against."""

from __future__ import annotations

import jax
import numpy as np
import optax

from jpose import flops as flop_count
from jpose.bench import timing
from jpose.geometry import heatmap
from jpose.losses import integral as integral_losses
from jpose.models import integral


def benchmark_integral_net(size: int, batch_size: int, steps: int, resnet_depth: int = 50,
                           depth_bins: int = 64) -> dict:
  """images/s of a ResNet integral pose net's jitted train step on one fixed batch:
  forward + backward (train-mode batch norm, soft-argmax, integral L1 loss) and an Adam
  update of every parameter. No rendering or augmentation (`--config` times those)."""
  model = integral.IntegralPoseNet(resnet_depth=resnet_depth, depth_bins=depth_bins)
  rng = np.random.default_rng(0)
  images = jax.numpy.asarray(rng.uniform(0, 1, (batch_size, size, size, 3)), np.float32)
  grid = (depth_bins, size // 4, size // 4)
  target = jax.numpy.asarray(rng.uniform(0, size // 4, (batch_size, 17, 3)), np.float32)
  visible = jax.numpy.ones((batch_size, 17))
  has_3d = jax.numpy.ones((batch_size,))
  variables = jax.jit(model.init)(jax.random.key(0), images[:1])
  optimizer = optax.adam(1e-3)

  def loss(params, batch_stats, images):
    logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                                  train=True, mutable=["batch_stats"])
    joints = heatmap.soft_argmax_volumes(logits)
    return (integral_losses.integral_l1(joints, target, visible, has_3d, grid),
            updates["batch_stats"])

  @jax.jit
  def step(params, opt_state, batch_stats, images):
    grads, batch_stats = jax.grad(loss, has_aux=True)(params, batch_stats, images)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, batch_stats

  params = variables["params"]
  args = [(params, optimizer.init(params), variables["batch_stats"], images)]
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  return {"model": "integral_net", "resnet_depth": resnet_depth, "params": count,
          "batch_size": batch_size, "size": size,
          "flops_per_step": flop_count.count(step, *args[0]).total,
          **timing.images_per_s(step, args, batch_size, steps)}
