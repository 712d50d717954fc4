"""MaskFN eye/mouth descriptors, computed once per frame from the cached aligned crops and crop landmarks.

``patches`` cuts the reference's eye and mouth patches, ``backends`` turns them (and the landmarks) into
per-region vectors, ``shard`` writes one descriptor row per frame of a preprocessed shard, ``quality``
measures how often a descriptor's nearest neighbour shows the same expression.
"""
