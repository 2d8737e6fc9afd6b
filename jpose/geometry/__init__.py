"""Pose geometry: skeleton layouts and mirrors, cameras, pixel affines, heatmap voxels and
similarity alignment (in jnp; a few also keep numpy inputs numpy)."""
