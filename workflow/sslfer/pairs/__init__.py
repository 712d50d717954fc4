"""TimeAug / HardNeg sampling: the per-track index (``pairs.parquet``) and the per-epoch sampler that reads it."""
