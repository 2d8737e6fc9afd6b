"""Pose metrics (pure functions over arrays) and the per-action accumulator."""
