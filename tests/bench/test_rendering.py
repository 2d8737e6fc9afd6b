"""jpose.bench.rendering: the mesh silhouettes' rate, in each mode."""

import pytest

from jpose.bench import rendering
from tests.render.test_mesh import _cube


def test_mesh_throughput_runs():
  vertices, faces = _cube(centre=(0, 0, 5.0), half=1.0)
  assert rendering.mesh_throughput(vertices, faces, size=16, batch=2, repeats=1) > 0
  with pytest.raises(ValueError, match="mode"):
    rendering.mesh_throughput(vertices, faces, size=16, batch=2, mode="fast")
