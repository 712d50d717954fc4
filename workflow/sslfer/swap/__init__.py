"""FaceSwap positives, precomputed per shard: another identity's head (the donor) carrying a frame's inner face.

- :mod:`.faceswap` swaps one pair of aligned crops (Procrustes on the inner-face landmarks, feathered
  hull mask, colour correction, clipped float blend).
- :mod:`.donors` chooses each frame's donors: other identities, similar head pose, seeded.
- :mod:`.shard` writes a shard's swaps (``swaps.parquet`` + ``swaps.npy``); :mod:`.qc` draws a contact sheet.
"""
