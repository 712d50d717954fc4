"""QC contact sheet of precomputed face swaps: rows of (donor | expression frame | swap result)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..jpeg_store import open_images
from ..layout import shard_of

COLUMNS = ["video_id", "identity", "frame_idx", "shard", "crop_index", "donor_identity", "donor_shard",
           "donor_crop_index", "donor_frame_idx", "status", "swap_file", "swap_index"]


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    tile = np.array(tile)
    cv2.putText(tile, text, (2, tile.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def swaps_sheet(swap_parquets: list[str | Path], frames_parquets: list[str | Path], n: int = 12,
                per_row: int = 2, seed: int = 0) -> np.ndarray:
    """RGB grid of ``n`` random ``ok`` swaps, ``per_row`` (donor, expression, result) triplets per row."""
    crops_of = {shard_of(f): Path(f).parent / c for f in frames_parquets
                for c in pq.read_table(f, columns=["crop_file"]).column("crop_file").unique().drop_null().to_pylist()}
    picks = []
    for f in swap_parquets:
        t = pq.read_table(f, columns=COLUMNS)
        t = t.filter(pc.equal(t.column("status"), "ok"))
        picks += [(Path(f).parent, r) for r in t.to_pylist()]
    if not picks:
        return np.full((64, 320, 3), 255, np.uint8)
    chosen = [picks[i] for i in sorted(np.random.default_rng(seed).choice(len(picks), min(n, len(picks)), False))]
    tiles = []
    for folder, r in chosen:
        donor = open_images(crops_of[r["donor_shard"]])[r["donor_crop_index"]]
        expr = open_images(crops_of[r["shard"]])[r["crop_index"]]
        swap = open_images(folder / r["swap_file"])[r["swap_index"]]
        tiles += [_caption(donor, f"{r['donor_identity']} #{r['donor_frame_idx']}"),
                  _caption(expr, f"{r['identity']} #{r['frame_idx']}"), _caption(swap, "swap")]
    size = tiles[0].shape[0]
    while len(tiles) % (3 * per_row):
        tiles.append(np.full((size, size, 3), 255, np.uint8))
    gap = np.full((size, 6, 3), 255, np.uint8)
    rows = []
    for i in range(0, len(tiles), 3 * per_row):
        parts = []
        for j in range(i, i + 3 * per_row, 3):
            parts += [*tiles[j:j + 3], gap]
        rows.append(np.concatenate(parts[:-1], axis=1))
    return np.concatenate(rows, axis=0)


def write_swaps_sheet(path: str | Path, swap_parquets: list[str | Path], frames_parquets: list[str | Path],
                      n: int = 12, seed: int = 0) -> Path:
    """Render :func:`swaps_sheet` to a PNG (e.g. ``results/qc/{corpus}_swaps.png``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), swaps_sheet(swap_parquets, frames_parquets, n=n, seed=seed)[..., ::-1]):
        raise OSError(f"could not write {path}")
    return path
