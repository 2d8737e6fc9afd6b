"""From 2D keypoints or video to 3D poses: the detector and its helpers."""
