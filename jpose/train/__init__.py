"""Training: state, trainers (steps), checkpointing, the loop and config checks."""
