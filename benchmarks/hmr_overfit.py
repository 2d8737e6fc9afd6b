"""Seed 001's overfitting study (its Table 1): the HMR hybrid trained on one fixed batch of
rendered bodies under six settings, KPR only, MR only and combined, each without and
with the WGAN-GP critic. Reports the final KPR and MR losses on that batch (eval mode),
a plausibility measure of the predicted poses (the negative log-likelihood under a
Gaussian fitted to the 1,000 real SMPL fits of LSP: lower is more typical of real
people) and the elbow/knee bend-limit violation, and draws the meshes.

  JPOSE_DATA_DIR=/path/to/shared/data python benchmarks/hmr_overfit.py \
      --steps 300 --out /tmp/hmr_overfit

Writes overfit.json, overfit.md and overfit.png into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import configs
from jpose.body import lbs
from jpose.body import pose_library
from jpose.body import priors
from jpose.evaluate import hmr as hmr_evaluation
from jpose.evaluate import plots
from jpose.losses import hmr as hmr_losses
from jpose.render import mesh
from jpose.train import registry

SETTINGS = {  # name -> (kpr weight, mr weight, critic)
    "KPR": (1.0, 0.0, False),
    "MR": (0.0, 1.0, False),
    "KPR + MR": (1.0, 1.0, False),
    "KPR + critic": (1.0, 0.0, True),
    "MR + critic": (0.0, 1.0, True),
    "KPR + MR + critic": (1.0, 1.0, True),
}


def run_setting(name: str, args) -> dict:
  kpr_w, mr_w, critic = SETTINGS[name]
  config = configs.load("hmr_hybrid:cpu")
  config.train.batch_size = args.batch
  config.hmr.fixed_batch = args.batch
  config.model.dropout = 0.0  # the study measures fitting, not generalisation.
  config.train.learning_rate = args.learning_rate
  config.hmr.kpr_weight = kpr_w
  config.hmr.mr_weight = mr_w * args.mr_scale
  config.hmr.critic = critic
  config.hmr.critic_learning_rate = args.critic_learning_rate
  config.hmr.shape_weight = args.shape_weight
  config.seed = args.seed
  trainer = registry.build(config, None, 0)
  resident = trainer.resident_data()
  state = jax.jit(trainer.init)(jax.random.key(config.seed))
  step = jax.jit(trainer.train_step, donate_argnums=0)
  batch = {"index": jnp.arange(args.batch, dtype=jnp.int32)}
  curve = []
  start = time.time()
  for i in range(args.steps):
    state, metrics = step(state, batch, resident)
    if (i + 1) % 50 == 0 or i == 0:
      m = jax.device_get(metrics)
      point = {k: float(m[k]) for k in ("kpr", "mr") if k in m}  # mr: only if trained.
      curve.append({"step": i + 1, **point})
      print(f"{name}: step {i + 1} {point} ({time.time() - start:.0f} s)", flush=True)
  images = trainer.render(resident, resident["poses"], batch["index"], config.seed)
  body = jax.jit(trainer.predict_bodies)(state, images["image"], trainer.body)
  terms = jax.jit(trainer.losses)(body, images, jax.random.key(0))
  metrics = jax.device_get(jax.jit(lambda b, i: hmr_evaluation.body_metrics(
      trainer, b, i, trainer.body.faces))(body, images))
  gaussian = priors.fit_gaussian(priors.load_pose_library(pose_library.default_path()))
  pose = np.asarray(body["pose"])
  nll = float(np.mean([gaussian(jnp.asarray(p)) for p in pose]))
  bends = float(np.mean([priors.bend_limit_penalty(jnp.asarray(p)) for p in pose]))
  return {"kpr": float(terms["kpr"]), "mr": float(terms["mr"]),
          "shape_norm": float(np.mean(np.linalg.norm(np.asarray(body["betas"]), axis=-1))),
          "pck": float(np.mean(metrics["pck"])), "iou": float(np.mean(metrics["iou"])),
          "pose_nll": nll, "bend_violation": bends, "curve": curve,
          "seconds": time.time() - start,
          "sample": {"image": np.asarray(images["image"]), "silhouette": metrics["silhouette"],
                     "joints_2d": np.asarray(images["joints_2d"]),
                     "predicted_2d": np.asarray(hmr_losses.to_pixels(body["keypoints_2d"],
                                                                     trainer.size)),
                     "side": np.stack([side_view(v, trainer.body.faces)
                                       for v in body["vertices"][:3]]),
                     "theta": np.concatenate([np.asarray(body["camera"]),
                                              pose.reshape(len(pose), -1),
                                              np.asarray(body["betas"])], -1)}}


def side_view(vertices, faces, size: int = 96):
  """(V, 3) camera-frame vertices -> (size, size) grey image of the mesh turned 90 degrees
  about the vertical (camera y) through its centre: the depth the front view hides."""
  centre = (vertices.max(0) + vertices.min(0)) / 2
  turned = (vertices - centre) @ lbs.rodrigues(jnp.array([0.0, jnp.pi / 2, 0.0])).T
  turned = turned + jnp.array([0.0, 0.0, 5.0])  # in front of the camera
  height = float(turned[:, 1].max() - turned[:, 1].min())
  camera = mesh.WeakPerspective(scale=jnp.asarray(1.8 / height), translation=jnp.zeros(2))
  raster = mesh.rasterize(turned, faces, camera, size)
  return np.asarray(mesh.shade(turned, faces, raster))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--learning_rate", type=float, default=1e-4)
  parser.add_argument("--mr_scale", type=float, default=5.0,
                      help="w_mr of the MR settings (the config's hmr.mr_weight)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--critic_learning_rate", type=float, default=1e-3,
                      help="hmr.critic_learning_rate (hmr_hybrid:cpu's)")
  parser.add_argument("--shape_weight", type=float, default=0.0,
                      help="hmr.shape_weight: an L2 prior on betas (0: the seed's recipe)")
  parser.add_argument("--settings", default=",".join(SETTINGS))
  parser.add_argument("--out", default="/tmp/hmr_overfit")
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  results = {}
  for name in args.settings.split(","):
    results[name] = run_setting(name, args)
  lines = ["| setting | KPR | MR | PCK@0.1 | IoU | pose NLL | bend violation (rad²) | |β| |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
  for name, r in results.items():
    lines.append(f"| {name} | {r['kpr']:.4f} | {r['mr']:.5f} | {r['pck']:.3f} | "
                 f"{r['iou']:.3f} | {r['pose_nll']:.1f} | {r['bend_violation']:.3f} | "
                 f"{r['shape_norm']:.2f} |")
  table = "\n".join(lines)
  print(table)
  with open(os.path.join(args.out, "overfit.md"), "w") as f:
    f.write(f"steps {args.steps}, batch {args.batch}, lr {args.learning_rate}, w_mr "
            f"{args.mr_scale}, critic lr {args.critic_learning_rate}, shape weight "
            f"{args.shape_weight}\n\n{table}\n")
  with open(os.path.join(args.out, "overfit.json"), "w") as f:
    json.dump({k: {m: v for m, v in r.items() if m != "sample"} for k, r in results.items()},
              f, indent=2)
  np.savez(os.path.join(args.out, "overfit_theta.npz"),
           **{name: r["sample"]["theta"] for name, r in results.items()})
  n = 3  # examples; each gets the front overlay and the side view.
  names = list(results)
  fig = plots.figure_lib.Figure(figsize=(3 * len(names), 6 * n))
  for j, name in enumerate(names):
    s = results[name]["sample"]
    for i in range(n):
      ax = fig.add_subplot(2 * n, len(names), 2 * i * len(names) + j + 1)
      mask = s["silhouette"][i][..., None] > 0.5
      overlay = np.where(mask, 0.5 * s["image"][i] + 0.5 * np.array([0.2, 0.6, 1.0]),
                         s["image"][i])
      plots.draw_image(ax, overlay, s["predicted_2d"][i], title=name if i == 0 else "")
      ax = fig.add_subplot(2 * n, len(names), (2 * i + 1) * len(names) + j + 1)
      ax.imshow(s["side"][i], cmap="gray", vmin=0, vmax=1)
      ax.set_axis_off()
      ax.set_title("side view", fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(args.out, "overfit.png"), dpi=80)


if __name__ == "__main__":
  main()
