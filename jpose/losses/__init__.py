"""Loss functions: pure functions over arrays."""
