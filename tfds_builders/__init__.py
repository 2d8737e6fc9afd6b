"""tfds builders, one folder per dataset; `jpose.data.datasets` is their registry."""
