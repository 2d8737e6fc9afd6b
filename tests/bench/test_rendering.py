"""jpose.bench.rendering: the mesh silhouettes' rate, in each mode."""

import jax.numpy as jnp
import numpy as np
import pytest

from jpose.bench import rendering


def _cube(centre, half):
  """Axis-aligned cube: 8 vertices, 12 triangles."""
  signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
  vertices = np.asarray(centre) + half * signs
  quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
  faces = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
  return jnp.asarray(vertices, jnp.float32), jnp.asarray(faces, jnp.int32)


def test_mesh_throughput_runs():
  vertices, faces = _cube(centre=(0, 0, 5.0), half=1.0)
  assert rendering.mesh_throughput(vertices, faces, size=16, batch=2, repeats=1) > 0
  with pytest.raises(ValueError, match="mode"):
    rendering.mesh_throughput(vertices, faces, size=16, batch=2, mode="fast")
