"""Flax modules only: they map arrays to arrays and never read files."""
