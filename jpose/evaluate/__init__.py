"""Evaluation: running a trained model over a split and reporting per-action errors."""
