"""COCO keypoints person crops (tfds, array_record)."""
