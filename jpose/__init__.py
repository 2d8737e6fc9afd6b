"""jpose: 3D human pose estimation in JAX/Flax, built for accelerator throughput."""

__version__ = "0.1.0"
