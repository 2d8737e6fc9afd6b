"""Human3.6M video-frame person crops (tfds, array_record)."""
