"""Writes a PNG grid of rendered training images with their 2D joints and skeleton drawn.

  python benchmarks/render_grid.py /tmp/rendered_grid.png [--size 128] [--rows 4 --cols 6]
  python benchmarks/render_grid.py /tmp/grid.png --time_batch 32   # also images/s

Poses come from real Human3.6M (S9, S11 via the h36m builder) when JPOSE_DATA_DIR is set,
else from the built-in synthetic_h36m dataset. Frames are spread over the whole split.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

from jpose.data import pipeline, rendered, resident  # noqa: E402
from jpose.geometry import skeleton  # noqa: E402


def load(data_dir: str | None):
  """The split to draw from: real Human3.6M test split if available, else synthetic."""
  real = os.environ.get("JPOSE_DATA_DIR")
  if real and os.path.isdir(os.path.join(real, "h36m")):
    return pipeline.load_split("h36m", "test", data_dir=data_dir,
                               manual_dir=os.path.join(real, "h36m")), "Human3.6M S9/S11"
  return pipeline.load_split("synthetic_h36m", "train", data_dir=data_dir), "synthetic_h36m"


def time_rendering(data, num_frames: int, size: int, batch: int, calls: int = 7) -> str:
  """Median wall time of `rendered.render_batch` over `calls` batches, after one compile."""
  rng = np.random.default_rng(0)
  flip = jnp.zeros(batch, bool)
  seconds, cpu_seconds = [], []
  for call in range(calls + 1):
    ids = jnp.asarray(rng.choice(num_frames, batch), jnp.int32)
    start, cpu_start = time.perf_counter(), time.process_time()
    jax.block_until_ready(rendered.render_batch(data, ids, jax.random.key(call), size=size,
                                                flip=flip))
    seconds.append(time.perf_counter() - start)
    cpu_seconds.append(time.process_time() - cpu_start)
  median, cpu = float(np.median(seconds[1:])), float(np.median(cpu_seconds[1:]))
  # CPU time (all threads) says what the work costs when other processes share the cores.
  return (f"render_batch size {size} batch {batch}: compile+first {seconds[0]:.1f} s, "
          f"median {median * 1e3:.1f} ms wall ({cpu * 1e3:.1f} ms CPU) -> "
          f"{batch / median:.0f} images/s")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("output", help="PNG path")
  parser.add_argument("--size", type=int, default=128)
  parser.add_argument("--rows", type=int, default=4)
  parser.add_argument("--cols", type=int, default=6)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--data_dir", default=None, help="tfds folder (default: a temp dir)")
  parser.add_argument("--dpi", type=int, default=80)
  parser.add_argument("--time_batch", type=int, default=0,
                      help="also time render_batch at this batch size (median of 7 calls "
                           "after compiling) and print images/s")
  args = parser.parse_args()

  data_dir = args.data_dir or os.path.join(tempfile.gettempdir(), "jpose_render_grid_tfds")
  split, name = load(data_dir)
  data = jax.device_put(resident.from_sequences(split))
  count = args.rows * args.cols
  rng = np.random.default_rng(args.seed)
  frame_ids = jnp.asarray(np.sort(rng.choice(split.num_frames, count, replace=False)), jnp.int32)
  batch = rendered.render_batch(data, frame_ids, jax.random.key(args.seed), size=args.size)
  images, joints = np.asarray(batch["image"]), np.asarray(batch["joints_2d"])

  if args.time_batch:
    print(time_rendering(data, split.num_frames, args.size, args.time_batch))

  fig, axes = plt.subplots(args.rows, args.cols, figsize=(1.6 * args.cols, 1.6 * args.rows))
  for ax, image, points in zip(axes.ravel(), images, joints):
    ax.imshow(image, extent=(0, args.size, args.size, 0), interpolation="nearest")
    for parent, child in skeleton.H36M_17.bones:
      left = "L" in skeleton.H36M_17.joint_names[child][:1]
      ax.plot(*points[[parent, child]].T, color="tab:blue" if left else "tab:red", lw=0.8)
    ax.scatter(*points.T, s=2, c="yellow", zorder=3)
    ax.set_xlim(0, args.size)
    ax.set_ylim(args.size, 0)
    ax.axis("off")
  fig.suptitle(f"rendered mannequin, {name}, {args.size}x{args.size}", fontsize=8)
  fig.tight_layout(pad=0.2)
  fig.savefig(args.output, dpi=args.dpi)
  # A 256-colour palette keeps the committed figure small (about a third of the RGB PNG).
  with Image.open(args.output) as png:
    png.convert("RGB").quantize(colors=256).save(args.output, optimize=True)
  print(f"wrote {args.output}")


if __name__ == "__main__":
  main()
