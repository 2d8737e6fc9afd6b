"""Pose geometry: skeleton layouts, cameras and similarity alignment (all in jnp)."""
