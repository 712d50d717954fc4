"""How well descriptors find same-expression frames: the nearest-neighbour agreement used to choose them.

For each frame, its cosine nearest neighbour among frames of *other* identities (MaskFN's false negatives
must share the expression, not the person); the figure is the fraction of frames whose neighbour has the
same ground-truth expression class. Chance is ``Σ p_c²`` over the class distribution.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def nn_agreement(x: np.ndarray, labels: np.ndarray, groups: np.ndarray, block: int = 1024) -> float:
    """Fraction of rows whose cosine nearest neighbour among rows of another group has the same label."""
    x = np.asarray(x, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    labels, groups = np.asarray(labels), np.asarray(groups)
    hits = 0
    for start in range(0, len(x), block):
        sim = x[start:start + block] @ x.T
        sim[groups[start:start + block, None] == groups[None, :]] = -np.inf
        hits += int((labels[sim.argmax(1)] == labels[start:start + block]).sum())
    return hits / max(len(x), 1)


def chance_agreement(labels: np.ndarray) -> float:
    """``Σ p_c²``: the agreement of a neighbour drawn at random from the same class distribution."""
    p = np.unique(np.asarray(labels), return_counts=True)[1] / max(len(labels), 1)
    return float((p ** 2).sum())


def with_truth(table: pa.Table, videos_truth: str) -> pd.DataFrame:
    """``table``'s rows (with ``video_id``, ``frame_idx``) joined to the synthetic corpus' per-frame ground
    truth (``groundtruth/videos.parquet``: expression, intensity, …), row order kept."""
    truth = pq.read_table(videos_truth, columns=["video_id", "frame_idx", "expression", "intensity"]).to_pandas()
    return table.to_pandas().merge(truth, on=["video_id", "frame_idx"], how="left", validate="one_to_one")
