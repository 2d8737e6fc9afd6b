"""Drawing people on the device: a capsule mannequin ray-caster and a mesh silhouette rasteriser (pure jnp)."""
