"""MPII Human Pose person crops (tfds, array_record)."""
