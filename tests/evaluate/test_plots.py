"""poses.png: readable 3D ticks and a visible collapsed 2D prediction (issue 27.4)."""

from matplotlib import figure as figure_lib
import numpy as np

from jpose.evaluate import plots
from jpose.geometry import skeleton as skeleton_lib


def _pose(seed=0):
  return np.random.default_rng(seed).normal(0.0, 300.0, (17, 3)) + [0.0, 0.0, 4000.0]


def test_3d_axes_have_few_ticks_so_labels_do_not_run_together():
  fig = figure_lib.Figure()
  ax = fig.add_subplot(1, 1, 1, projection="3d")
  plots.draw_3d(ax, _pose())
  for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim()),
                            (ax.zaxis, ax.get_zlim())):
    shown = [t for t in axis.get_majorticklocs() if low <= t <= high]
    # matplotlib's default puts 9 ticks (every 250 mm) on the 1800 mm span.
    assert 2 <= len(shown) <= 4, shown


def test_a_collapsed_predicted_2d_is_drawn_and_named():
  image = np.zeros((64, 64, 3), np.float32)
  joints = np.full((17, 2), 31.5, np.float32)
  fig = figure_lib.Figure()
  ax = fig.add_subplot(1, 1, 1)
  plots.draw_image(ax, image, joints, skeleton_lib.H36M_17, title="s1: image, predicted 2D")
  assert "all 17 joints at one point" in ax.get_title()
  marks = [c.get_offsets() for c in ax.collections]
  assert any(np.allclose(m, [[31.5, 31.5]]) for m in marks), marks


def test_a_spread_predicted_2d_keeps_its_title():
  image = np.zeros((64, 64, 3), np.float32)
  joints = np.random.default_rng(0).uniform(5, 60, (17, 2))
  fig = figure_lib.Figure()
  ax = fig.add_subplot(1, 1, 1)
  plots.draw_image(ax, image, joints, title="s1: image, predicted 2D")
  assert ax.get_title() == "s1: image, predicted 2D"
