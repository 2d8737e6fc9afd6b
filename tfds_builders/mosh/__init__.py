"""SMPL pose/shape samples (MoSh fits of mocap) for adversarial body priors (tfds, array_record)."""
