"""Precompute one shard's face swaps: for each of its frames with an aligned crop, ``k`` swaps onto donors.

Writes ``swaps.parquet`` (one row per (expression frame, donor rank); every planned swap is accounted for
with a ``status``) and ``swaps.npy`` (uint8 ``(n_ok, S, S, 3)`` RGB, memory-mappable; or, with ``storage``
``jpeg``, the same images JPEG-encoded in one file, see :mod:`sslfer.jpeg_store`; row ``swap_index`` holds a
swap's image, -1 where there is none). Frames without a crop are not positives and get no rows;
they are counted in the log line.

Row ``status`` values: ``ok``; ``degenerate_landmarks`` (the pair's landmarks cannot define a swap: see
``error``); ``no_donor`` (the corpus has fewer other-identity frames than ``donors_per_frame``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from ..files import remove_stale_temps
from ..jpeg_store import STORAGES, JpegImages, image_slots, open_images
from ..parquet import LANDMARKS_TYPE, landmarks_array, landmarks_numpy, write_parquet
from .donors import DonorPool, choose_donors, read_frames
from .faceswap import DEGENERATE, OK, fit_transform, render_swap

log = logging.getLogger(__name__)

NO_DONOR = "no_donor"
DONOR_COLUMNS = ("video_id", "identity", "shard", "frame_idx", "crop_index", "crops_path")


@dataclass
class SwapConfig:
    """The ``swap`` settings that shape a shard's swaps."""

    donors_per_frame: int = 2
    pose_candidates: int = 16
    feather_px: float = 3.0
    colour_correct: bool = True
    max_frames_per_track: int = 0
    storage: str = "raw"             # raw uint8 arrays, or jpeg (see sslfer.jpeg_store)
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if self.donors_per_frame < 1 or self.pose_candidates < 1 or self.feather_px < 0 or self.max_frames_per_track < 0:
            raise ValueError(f"swap settings out of range: {self}")
        if self.storage not in STORAGES or not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"config swap.storage must be one of {', '.join(STORAGES)} (got {self.storage!r}) and "
                             f"swap.jpeg_quality in 1..100 (got {self.jpeg_quality})")

    @classmethod
    def from_config(cls, section: dict) -> SwapConfig:
        """From the ``swap`` config section (defaults filled in by the schema)."""
        return cls(donors_per_frame=section["donors_per_frame"], pose_candidates=section["pose_candidates"],
                   feather_px=section["feather_px"], colour_correct=section["colour_correct"],
                   max_frames_per_track=section["max_frames_per_track"], storage=section["storage"],
                   jpeg_quality=section["jpeg_quality"])


def expression_frames(frames: pa.Table, shard: int, max_per_track: int) -> tuple[pa.Table, int, int]:
    """(rows of ``shard`` with a crop, at most ``max_per_track`` evenly spaced per track when > 0; number of
    the shard's frames without a crop; number left out by the cap)."""
    rows = frames.filter(pc.equal(frames.column("shard"), shard))
    has_crop = pc.greater_equal(rows.column("crop_index"), 0)
    n_no_crop = rows.num_rows - pc.sum(has_crop).as_py() if rows.num_rows else 0
    rows = rows.filter(has_crop)
    if max_per_track <= 0 or rows.num_rows == 0:
        return rows, n_no_crop, 0
    vids = np.asarray(rows.column("video_id").to_pylist(), dtype=object)
    starts = np.flatnonzero(np.r_[True, vids[1:] != vids[:-1]])
    keep = []
    for a, b in zip(starts, np.r_[starts[1:], len(vids)]):
        n = b - a
        keep.extend(a + (np.unique(np.round(np.linspace(0, n - 1, max_per_track)).astype(int))
                         if n > max_per_track else np.arange(n)))
    return rows.take(pa.array(keep, pa.int64())), n_no_crop, rows.num_rows - len(keep)


class _Crops:
    """``crops.npy`` files (raw or JPEG, :func:`sslfer.jpeg_store.open_images`), opened once each."""

    def __init__(self) -> None:
        self._open: dict[str, np.ndarray | JpegImages] = {}

    def _get(self, path: str) -> np.ndarray | JpegImages:
        if path not in self._open:
            self._open[path] = open_images(path)
        return self._open[path]

    def __call__(self, path: str, index: int) -> np.ndarray:
        return np.asarray(self._get(path)[index])

    def size(self, path: str | None) -> int:
        """Crop size of a crops file (0 for None)."""
        return self._get(path).shape[1] if path else 0


class _Planned(NamedTuple):
    """One planned swap."""

    row: int                      # expression frame (row of the expression table)
    rank: int
    donor: int                    # pool index, -1 without a donor
    transform: np.ndarray | None
    status: str
    error: str | None


def _plan(pool: DonorPool, expr: pa.Table, expr_lm: np.ndarray, size: int, c: SwapConfig, seed: int) -> list[_Planned]:
    """Donors, transforms and statuses of every swap (cheap: no pixels), so the image file can be sized."""
    plan = []
    for i, (vid, ident, fidx) in enumerate(zip(expr.column("video_id").to_pylist(), expr.column("identity").to_pylist(),
                                              expr.column("frame_idx").to_pylist())):
        donors = choose_donors(pool, vid, ident, fidx, expr_lm[i], c.donors_per_frame, c.pose_candidates, seed)
        for rank in range(c.donors_per_frame):
            if rank >= len(donors):
                plan.append(_Planned(i, rank, -1, None, NO_DONOR,
                                     f"{vid} frame {fidx}: no donor of another identity for rank {rank}"))
                continue
            d = int(donors[rank])
            m, err = fit_transform(pool.landmarks[d], expr_lm[i], size)
            if err:
                donor = pool.frames.slice(d, 1).to_pylist()[0]
                err = f"{vid} frame {fidx} onto donor {donor['video_id']} frame {donor['frame_idx']}: {err}"
            plan.append(_Planned(i, rank, d, m, DEGENERATE if err else OK, err))
    return plan


def swap_shard(frames_parquets: list[str | Path], shard: int, out_parquet: str | Path, out_npy: str | Path,
               c: SwapConfig, seed: int, provenance: dict) -> Counter:
    """Swap every frame of shard ``shard`` (its ``frames.parquet`` is among ``frames_parquets``, the whole
    corpus's, which supply the donors) onto ``c.donors_per_frame`` donors; write both outputs atomically;
    return the row status counts."""
    out_parquet, out_npy = Path(out_parquet), Path(out_npy)
    for folder in sorted({out_parquet.parent, out_npy.parent}):
        remove_stale_temps(folder)                   # temporary files of killed jobs
    frames = read_frames(frames_parquets)
    pool = DonorPool.from_frames(frames)
    expr, n_no_crop, n_capped = expression_frames(frames, shard, c.max_frames_per_track)
    expr_lm = landmarks_numpy(expr.column("landmarks_crop"))
    crops = _Crops()
    expr_crops = list(zip(expr.column("crops_path").to_pylist(), expr.column("crop_index").to_pylist()))
    size = crops.size(expr_crops[0][0] if expr_crops else None)
    plan = _plan(pool, expr, expr_lm, size, c, seed)
    used = sorted({s.donor for s in plan if s.donor >= 0})
    donors = pool.frames.take(pa.array(used, pa.int64()))
    donor_cols = {k: dict(zip(used, donors.column(k).to_pylist())) for k in DONOR_COLUMNS}

    n_ok = sum(s.status == OK for s in plan)
    swap_index, areas = np.full(len(plan), -1, np.int64), np.full(len(plan), np.nan, np.float32)
    lms = np.full((len(plan), 68, 2), np.nan, np.float32)

    with image_slots(out_npy, n_ok, size, c.storage, c.jpeg_quality) as images:
        n_done = 0
        for j, s in enumerate(tqdm(plan, desc="swaps", mininterval=5.0, unit="swap")):
            if s.status != OK:
                continue
            donor_rgb = crops(donor_cols["crops_path"][s.donor], donor_cols["crop_index"][s.donor])
            images[n_done], areas[j], lms[j] = render_swap(
                donor_rgb, pool.landmarks[s.donor], crops(*expr_crops[s.row]), expr_lm[s.row], s.transform,
                c.feather_px, c.colour_correct)
            swap_index[j] = n_done
            n_done += 1
    counts = Counter(s.status for s in plan)
    table = _table(plan, expr, donor_cols, swap_index, areas, lms, shard, out_npy.name)
    write_parquet(table, out_parquet, dict(provenance, status_counts=dict(sorted(counts.items())),
                                           frames_without_crop=n_no_crop, frames_over_cap=n_capped))
    log.info("swap shard %d: %d frames with a crop swapped (%d without a crop not swapped, %d over the per-track "
             "cap), donor pool %d frames; swap rate %.1f%%: %s", shard, expr.num_rows, n_no_crop, n_capped, len(pool),
             100 * n_ok / max(len(plan), 1), dict(sorted(counts.items())))
    return counts


def _table(plan: list[_Planned], expr: pa.Table, donor_cols: dict, swap_index: np.ndarray, areas: np.ndarray,
           lms: np.ndarray, shard: int, npy_name: str) -> pa.Table:
    """The ``swaps.parquet`` table of a planned and rendered shard."""
    n = len(plan)
    rows = pa.array([s.row for s in plan], pa.int64())
    ok = pa.array([s.status == OK for s in plan], pa.bool_())

    def expr_col(key: str) -> pa.Array:
        return expr.column(key).take(rows)

    def donor_col(key: str, typ: pa.DataType) -> pa.Array:
        return pa.array([donor_cols[key][s.donor] if s.donor >= 0 else None for s in plan], typ)

    return pa.table({
        "video_id": expr_col("video_id"),
        "identity": expr_col("identity"),
        "frame_idx": expr_col("frame_idx"),
        "shard": pa.array(np.full(n, shard, np.int64)),
        "crop_index": expr_col("crop_index"),
        "donor_rank": pa.array([s.rank for s in plan], pa.int32()),
        "donor_video_id": donor_col("video_id", pa.string()),
        "donor_identity": donor_col("identity", pa.string()),
        "donor_shard": donor_col("shard", pa.int64()),
        "donor_frame_idx": donor_col("frame_idx", pa.int64()),
        "donor_crop_index": donor_col("crop_index", pa.int64()),
        "status": pa.array([s.status for s in plan], pa.string()),
        "error": pa.array([s.error for s in plan], pa.string()),
        "transform": pa.array([None if s.transform is None else [float(v) for v in s.transform.ravel()]
                               for s in plan], pa.list_(pa.float32(), 6)),
        "mask_area": pa.array(areas, pa.float32()),
        "swap_file": pa.array([npy_name if s.status == OK else None for s in plan], pa.string()),
        "swap_index": pa.array(swap_index),
        "landmarks_crop": pc.if_else(ok, landmarks_array(lms), pa.nulls(n, LANDMARKS_TYPE)) if n
        else landmarks_array(lms),
    })
