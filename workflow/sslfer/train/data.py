"""Training inputs read once from the cached artifacts: crops, crop landmarks, swaps, descriptors.

Frames are addressed by their position in :class:`~sslfer.pairs.sampler.PairsIndex` (the flattened usable
frames of ``pairs.parquet``). Per frame this module holds where its crop lives (shard, row of
``crops.npy``), its 68 landmarks in crop pixels, its MaskFN descriptor (``valid`` false where it has none)
and the rows of its precomputed face swaps. Pixels stay in the memory-mapped shard files; a batch gathers
only the rows it needs, shard by shard.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..jpeg_store import JpegImages, open_images
from ..layout import shard_dir
from ..npy import take_sorted
from ..pairs.sampler import Draw, PairsIndex
from ..parquet import landmarks_numpy

log = logging.getLogger(__name__)


def match(have: np.ndarray, want: np.ndarray) -> np.ndarray:
    """For each value of ``want``, its position in ``have`` (values unique), or -1 where absent."""
    if len(have) == 0:
        return np.full(len(want), -1, np.int64)
    order = np.argsort(have, kind="stable")
    pos = np.minimum(np.searchsorted(have[order], want), len(have) - 1)
    return np.where(have[order][pos] == want, order[pos], -1)


@dataclass
class Batch:
    """One training batch, rows ordered [A, NA, P, NP] (or [A, P] without HardNeg)."""

    images: np.ndarray        # uint8 (n, S, S, 3)
    landmarks: np.ndarray     # float32 (n, 68, 2), crop pixels
    descriptors: np.ndarray   # float32 (n, D)
    valid: np.ndarray         # bool (n,): has a descriptor
    group: np.ndarray         # int64 (n,): track of the row
    swapped: np.ndarray       # bool (n,)


class TrainingData:
    """Everything a training step reads, for one corpus."""

    def __init__(self, pairs: str | Path, frames_dir: str | Path, swaps_dir: str | Path | None = None,
                 descriptors_dir: str | Path | None = None) -> None:
        self.index = PairsIndex.read(str(pairs))
        frames_dir = Path(frames_dir)
        shards = sorted(set(self.index.frame_shard.tolist()))
        self.crops = {s: open_images(shard_dir(frames_dir, s) / "crops.npy") for s in shards}
        n = self.index.n_frames
        self.landmarks = np.full((n, 68, 2), np.nan, np.float32)
        for s in shards:
            tab = pq.read_table(shard_dir(frames_dir, s) / "frames.parquet", columns=["crop_index", "landmarks_crop"])
            tab = tab.filter(pc.greater_equal(tab.column("crop_index"), 0))
            mine = np.flatnonzero(self.index.frame_shard == s)
            at = match(tab.column("crop_index").to_numpy(), self.index.frame_crop[mine])
            self.landmarks[mine[at >= 0]] = landmarks_numpy(tab.column("landmarks_crop"))[at[at >= 0]]
        self.descriptors, self.valid = self._read_descriptors(descriptors_dir, shards)
        self._read_swaps(swaps_dir, shards)

    def _read_descriptors(self, root: str | Path | None, shards: list[int]) -> tuple[np.ndarray, np.ndarray]:
        n = self.index.n_frames
        if root is None:
            return np.zeros((n, 1), np.float32), np.zeros(n, bool)
        out, valid = None, np.zeros(n, bool)
        for s in shards:
            tab = pq.read_table(shard_dir(root, s) / "descriptors.parquet",
                                columns=["crop_index", "status", "descriptor"])
            tab = tab.filter(pc.equal(tab.column("status"), "ok"))
            vecs = np.stack(tab.column("descriptor").to_numpy(zero_copy_only=False)).astype(np.float32) \
                if tab.num_rows else np.zeros((0, 1), np.float32)
            if out is None and tab.num_rows:
                out = np.zeros((n, vecs.shape[1]), np.float32)
            mine = np.flatnonzero(self.index.frame_shard == s)
            at = match(tab.column("crop_index").to_numpy(), self.index.frame_crop[mine])
            if out is not None:
                out[mine[at >= 0]] = vecs[at[at >= 0]]
            valid[mine[at >= 0]] = True
        return (out if out is not None else np.zeros((n, 1), np.float32)), valid

    def _read_swaps(self, root: str | Path | None, shards: list[int]) -> None:
        """Per frame, the rows of its successful swaps (CSR: ``swap_start``, ``swap_shard``/``swap_row``)."""
        n = self.index.n_frames
        owner, sh, row, lms = [], [], [], []
        self.swap_images: dict[int, np.ndarray | JpegImages] = {}
        for s in shards if root is not None else []:
            d = shard_dir(root, s)
            tab = pq.read_table(d / "swaps.parquet", columns=["crop_index", "status", "swap_index", "landmarks_crop"])
            tab = tab.filter(pc.equal(tab.column("status"), "ok"))
            self.swap_images[s] = open_images(d / "swaps.npy")
            mine = np.flatnonzero(self.index.frame_shard == s)
            at = match(self.index.frame_crop[mine], tab.column("crop_index").to_numpy())
            keep = at >= 0                   # swaps of frames the pairs index uses
            owner.append(mine[at[keep]])
            sh.append(np.full(keep.sum(), s, np.int64))
            row.append(tab.column("swap_index").to_numpy()[keep])
            lms.append(landmarks_numpy(tab.column("landmarks_crop"))[keep])
        owner_a = np.concatenate(owner) if owner else np.zeros(0, np.int64)
        order = np.argsort(owner_a, kind="stable")
        self.swap_shard = (np.concatenate(sh) if sh else np.zeros(0, np.int64))[order]
        self.swap_row = (np.concatenate(row) if row else np.zeros(0, np.int64))[order].astype(np.int64)
        self.swap_landmarks = (np.concatenate(lms) if lms else np.zeros((0, 68, 2), np.float32))[order]
        self.swap_start = np.concatenate([[0], np.cumsum(np.bincount(owner_a, minlength=n))]).astype(np.int64)

    @property
    def has_swaps(self) -> bool:
        return len(self.swap_row) > 0

    def _gather(self, store: dict[int, np.ndarray | JpegImages], shard: np.ndarray, rows: np.ndarray) -> np.ndarray:
        first = next(iter(store.values()))
        out = np.empty((len(rows),) + first.shape[1:], np.uint8)
        for s in np.unique(shard):
            sel = np.flatnonzero(shard == s)
            out[sel] = take_sorted(store[int(s)], rows[sel])
        return out

    def frame_images(self, frames: np.ndarray) -> np.ndarray:
        """uint8 ``(n, S, S, 3)`` cached crops of ``frames`` (positions in :attr:`index`)."""
        return self._gather(self.crops, self.index.frame_shard[frames], self.index.frame_crop[frames])

    def batch(self, draw: Draw, rows: np.ndarray, rng: np.random.Generator, swap_p: float) -> Batch:
        """Rows ``rows`` of an epoch's draw as one batch; positives swapped with probability ``swap_p``."""
        first = [draw.anchor[rows]] + ([draw.neg_anchor[rows]] if (draw.neg_anchor[rows] >= 0).all() else [])
        second = [draw.positive[rows]] + ([draw.neg_positive[rows]] if len(first) == 2 else [])
        frames = np.concatenate(first + second)
        images = self.frame_images(frames)
        landmarks = self.landmarks[frames].copy()
        swapped = np.zeros(len(frames), bool)
        if swap_p > 0 and self.has_swaps:
            n_first = len(rows) * len(first)
            cand = np.arange(n_first, len(frames))
            counts = self.swap_start[frames[cand] + 1] - self.swap_start[frames[cand]]
            draw_swap = (rng.random(len(cand)) < swap_p) & (counts > 0)
            pick = rng.integers(0, np.maximum(counts, 1))
            sel = cand[draw_swap]
            k = self.swap_start[frames[sel]] + pick[draw_swap]
            if len(sel):
                images[sel] = self._gather(self.swap_images, self.swap_shard[k], self.swap_row[k])
                landmarks[sel] = self.swap_landmarks[k]
                swapped[sel] = True
        group = np.tile(self.index.frame_track[frames[: len(rows)]], len(first) + len(second))
        return Batch(images, landmarks, self.descriptors[frames], self.valid[frames], group, swapped)
