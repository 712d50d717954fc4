"""QC contact sheet of a preprocessed corpus: random aligned crops with their 68 landmarks drawn."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq

from ..jpeg_store import open_images
from ..parquet import landmarks_numpy


def crops_sheet(shard_files: list[str | Path], n: int = 48, columns: int = 8, seed: int = 0) -> np.ndarray:
    """RGB grid of ``n`` random cropped faces (status ok/multi_face) with landmarks, captioned by video."""
    rng = np.random.default_rng(seed)
    tables = {Path(f): pq.read_table(f, columns=["video_id", "frame_idx", "crop_file", "crop_index", "landmarks_crop"])
              for f in shard_files}
    picks = [(f, int(r)) for f, t in tables.items() for r in np.flatnonzero(t.column("crop_index").to_numpy() >= 0)]
    if not picks:
        return np.full((64, 320, 3), 255, np.uint8)
    chosen = sorted(picks[i] for i in rng.choice(len(picks), min(n, len(picks)), replace=False))
    tiles = []
    for f, r in chosen:
        t = tables[f].slice(r, 1)
        crops = open_images(f.parent / t.column("crop_file")[0].as_py())
        tile = np.array(crops[t.column("crop_index")[0].as_py()])
        for x, y in landmarks_numpy(t.column("landmarks_crop"))[0]:
            cv2.circle(tile, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1, cv2.LINE_AA)
        label = f"{t.column('video_id')[0].as_py().split('/')[0]} #{t.column('frame_idx')[0].as_py()}"
        cv2.putText(tile, label, (2, tile.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    size = tiles[0].shape[0]
    while len(tiles) % columns:
        tiles.append(np.full((size, size, 3), 255, np.uint8))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def write_crops_sheet(path: str | Path, shard_files: list[str | Path], seed: int = 0) -> Path:
    """Render :func:`crops_sheet` to a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), crops_sheet(shard_files, seed=seed)[..., ::-1]):
        raise OSError(f"could not write {path}")
    return path
