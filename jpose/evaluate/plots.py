"""Pose figures: 2D input, ground-truth 3D and predicted 3D side by side.

Used by the evaluation (writes <workdir>/poses.png) and the Colab demos.
"""

from __future__ import annotations

from matplotlib import figure as figure_lib
from matplotlib import ticker
import numpy as np

from jpose.geometry import skeleton as skeleton_lib

_LEFT, _RIGHT, _MIDDLE = "tab:blue", "tab:red", "0.3"


def _bone_colour(child: int, skeleton: skeleton_lib.Skeleton) -> str:
  name = skeleton.joint_names[child]
  return _LEFT if name.startswith("L") else _RIGHT if name.startswith("R") else _MIDDLE


def draw_2d(ax, pose_2d: np.ndarray, skeleton=skeleton_lib.H36M_17, title: str = "") -> None:
  """(J, 2) pixel pose; image y points down, so the axis is inverted."""
  for parent, child in skeleton.bones:
    seg = pose_2d[[parent, child]]
    if np.isfinite(seg).all():
      ax.plot(seg[:, 0], seg[:, 1], color=_bone_colour(child, skeleton), lw=2)
  ax.scatter(pose_2d[:, 0], pose_2d[:, 1], s=8, color="k")
  finite = pose_2d[np.isfinite(pose_2d).all(axis=-1)]
  centre = (finite.max(0) + finite.min(0)) / 2
  half = (finite.max(0) - finite.min(0)).max() / 2 * 1.15
  ax.set_xlim(centre[0] - half, centre[0] + half)
  ax.set_ylim(centre[1] - half, centre[1] + half)
  ax.set_aspect("equal")
  ax.invert_yaxis()
  ax.set_title(title)


# A predicted 2D pose whose joints all lie within this many pixels is drawn as one point.
_COLLAPSED_PX = 2.0
# 3D panels: at most this many ticks an axis, so that their labels do not run together.
_TICKS_3D = 3


def draw_image(ax, image: np.ndarray, joints_2d: np.ndarray, skeleton=skeleton_lib.H36M_17,
               title: str = "", missing: np.ndarray | None = None) -> None:
  """(H, W, 3) image (floats in [0, 1], or uint8) with a (J, 2) pixel pose drawn on it.

  Pixels are continuous coordinates: pixel (i, j) spans [j, j + 1] x [i, i + 1]. NaN joints
  and their bones are left out. With `missing` (J,) bool, joints are marked: filled dots
  where detected, hollow grey rings (and dashed bones) where guessed.
  """
  # uint8 goes to imshow as is: clipping it to [0, 1] would turn it black and white.
  ax.imshow(image if image.dtype == np.uint8 else np.clip(image, 0.0, 1.0),
            extent=(0, image.shape[1], image.shape[0], 0))
  for parent, child in skeleton.bones:
    seg = joints_2d[[parent, child]]
    if not np.isfinite(seg).all():
      continue
    guessed = missing is not None and (missing[parent] or missing[child])
    ax.plot(seg[:, 0], seg[:, 1], color=_bone_colour(child, skeleton), lw=2,
            ls="--" if guessed else "-")
  finite = joints_2d[np.isfinite(joints_2d).all(axis=-1)]
  if len(finite) > 1 and np.ptp(finite, axis=0).max() < _COLLAPSED_PX:
    # Every joint on one spot draws no bone: mark the spot and say so in the title.
    ax.scatter(finite[:1, 0], finite[:1, 1], s=120, facecolors="none", edgecolors="red",
               linewidths=2, zorder=4)
    title = f"{title} (all {len(finite)} joints at one point)" if title else (
        f"all {len(finite)} joints at one point")
  if missing is not None:
    missing = np.asarray(missing, bool)
    seen, guessed = joints_2d[~missing], joints_2d[missing]
    ax.scatter(seen[:, 0], seen[:, 1], s=12, color="k", zorder=3)
    ax.scatter(guessed[:, 0], guessed[:, 1], s=40, facecolors="none", edgecolors="0.55",
               linewidths=1.5, zorder=3)
  ax.set_xlim(0, image.shape[1])
  ax.set_ylim(image.shape[0], 0)
  ax.set_axis_off()
  ax.set_title(title)


def draw_3d(ax, pose_3d: np.ndarray, skeleton=skeleton_lib.H36M_17, title: str = "",
            radius: float = 900.0, centre: np.ndarray | None = None,
            azim: float = -70.0) -> None:
  """(J, 3) camera-frame pose in mm (x right, y down, z forward), drawn upright.

  The axes span `radius` mm either side of `centre` ((3,) in the plotting frame: x, depth,
  up), which defaults to the root joint; `azim` turns the view about the vertical axis.
  """
  p = to_plot_frame(pose_3d)
  for parent, child in skeleton.bones:
    seg = p[[parent, child]]
    ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=_bone_colour(child, skeleton), lw=2)
  centre = p[0] if centre is None else centre
  ax.set_xlim(centre[0] - radius, centre[0] + radius)
  ax.set_ylim(centre[1] - radius, centre[1] + radius)
  ax.set_zlim(centre[2] - radius, centre[2] + radius)
  for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
    axis.set_major_locator(ticker.MaxNLocator(_TICKS_3D))
  ax.tick_params(labelsize=7)
  ax.view_init(elev=15, azim=azim)
  ax.set_title(title)


def to_plot_frame(pose_3d: np.ndarray) -> np.ndarray:
  """(..., 3) camera-frame points (x right, y down, z forward) -> (..., 3) plotting-frame
  points (x right, depth into the page, up = -y), so that people stand upright."""
  return np.stack([pose_3d[..., 0], pose_3d[..., 2], -pose_3d[..., 1]], axis=-1)


def figure_2d_3d(poses_2d: np.ndarray, targets_3d: np.ndarray, predicted_3d: np.ndarray,
                 titles: list[str] | None = None, images: np.ndarray | None = None,
                 image_joints: np.ndarray | None = None):
  """One row per example: 2D input | ground truth 3D | predicted 3D (with its MPJPE).

  With `images` (N, S, S, 3) (an image model's input), the first panel is the image with
  `image_joints` (N, J, 2), the predicted 2D in crop pixels, drawn on it.
  """
  n = len(poses_2d)
  # A bare Figure needs no pyplot backend: it works on headless servers and in notebooks.
  fig = figure_lib.Figure(figsize=(12, 4 * n))
  for i in range(n):
    error = np.linalg.norm(predicted_3d[i] - targets_3d[i], axis=-1).mean()
    label = titles[i] if titles else f"example {i}"
    if images is None:
      draw_2d(fig.add_subplot(n, 3, 3 * i + 1), poses_2d[i], title=f"{label}: 2D input")
    else:
      draw_image(fig.add_subplot(n, 3, 3 * i + 1), images[i], image_joints[i],
                 title=f"{label}: image, predicted 2D")
    draw_3d(fig.add_subplot(n, 3, 3 * i + 2, projection="3d"), targets_3d[i],
            title="ground truth 3D")
    draw_3d(fig.add_subplot(n, 3, 3 * i + 3, projection="3d"), predicted_3d[i],
            title=f"predicted 3D (MPJPE {error:.0f} mm)")
  fig.tight_layout()
  return fig


def figure_latent_pca(latents: np.ndarray, labels: list[str]):
  """Latent means (N, D) projected on their first two principal components, coloured by
  label (action)."""
  centred = latents - latents.mean(axis=0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  xy = centred @ vt[:2].T
  fig = figure_lib.Figure(figsize=(8, 7))
  ax = fig.add_subplot(1, 1, 1)
  names = sorted(set(labels))
  colours = matplotlib_colormap(len(names))
  labels = np.asarray(labels)
  for i, name in enumerate(names):
    sel = labels == name
    ax.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, color=colours[i], label=name)
  ax.set_xlabel("PC 1")
  ax.set_ylabel("PC 2")
  ax.set_title("Latent means (PCA), coloured by action")
  ax.legend(markerscale=4, fontsize=7, ncol=2)
  fig.tight_layout()
  return fig


def matplotlib_colormap(n: int):
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  cmap = colormaps["tab20"]
  return [cmap(i % 20) for i in range(n)]


def figure_mesh_overlay(images: np.ndarray, silhouettes: np.ndarray, target_2d: np.ndarray,
                        predicted_2d: np.ndarray, titles: list[str] | None = None):
  """One row per example: the image with the annotated 2D joints | the image with the
  predicted mesh's silhouette (tinted) and its projected joints.

  images (N, S, S, 3) in [0, 1]; silhouettes (N, S, S) {0, 1}; joints (N, 17, 2) crop px.
  """
  n = len(images)
  fig = figure_lib.Figure(figsize=(6, 3 * n))
  for i in range(n):
    label = titles[i] if titles else f"example {i}"
    draw_image(fig.add_subplot(n, 2, 2 * i + 1), images[i], target_2d[i],
               title=f"{label}: annotated 2D")
    tint = np.array([0.2, 0.6, 1.0])
    mask = silhouettes[i][..., None] > 0.5
    overlay = np.where(mask, 0.5 * images[i] + 0.5 * tint, images[i])
    draw_image(fig.add_subplot(n, 2, 2 * i + 2), overlay, predicted_2d[i],
               title="predicted mesh and 2D")
  fig.tight_layout()
  return fig
