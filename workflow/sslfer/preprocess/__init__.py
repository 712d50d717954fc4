"""Preprocessing: video/frame-tree manifest → sampled frames → faces → 68 landmarks → aligned crops."""
