"""Per-epoch draws of (anchor, positive, hard-negative anchor, its positive) from ``pairs.parquet``.

The reference fixed one draw per track for the whole run (made once, with its dataset); here every epoch draws
afresh from a generator seeded by ``(seed, epoch)``, so a run is reproducible and a resumed run draws what an
uninterrupted one would. Rules, per track:

- anchor *A*: uniform over the track's frames that can serve the variant (with ``hard_neg``: frames with a
  positive and a hard negative; with ``time_aug`` only: frames with a positive; otherwise any usable frame);
- positive *P* (``time_aug``): one of A's TimeAug partners, weighted by ``distribution`` over the offset
  magnitude within ``positive_s`` — ``a`` uniform, ``b`` increasing, ``c`` decreasing (linear ramps 1→5 and
  5→1, which are the reference's weights [1..5]/15 at its five offsets); without ``time_aug``, P = A (two
  augmentations of one frame, SimCLR);
- hard negative *NA* (``hard_neg``): a side (before/after A) by a fair coin among the feasible ones, then
  uniform over that side's frames at least ``hard_negative_min_s`` from A (that have a positive when
  ``time_aug`` is on); *NP* is NA's own TimeAug partner (or NA itself without ``time_aug``).

Frames come back as positions into :attr:`PairsIndex.frame_shard` / ``frame_crop`` / ``frame_track``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..parquet import read_provenance

DISTRIBUTIONS = ("a", "b", "c")


def offset_weights(offsets: np.ndarray, positive_s: tuple[float, float], distribution: str) -> np.ndarray:
    """Unnormalised weights of TimeAug offsets (seconds) for distribution mode ``a`` / ``b`` / ``c``."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"TimeAug distribution must be one of {DISTRIBUTIONS}, not {distribution!r}")
    lo, hi = positive_s
    x = np.clip((np.abs(offsets) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return {"a": np.ones_like(x), "b": 1.0 + 4.0 * x, "c": 5.0 - 4.0 * x}[distribution]


def _flat(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets) of a list column."""
    arr = column.combine_chunks()
    offsets = arr.offsets.to_numpy()
    return arr.values.to_numpy(zero_copy_only=False)[offsets[0]:offsets[-1]], offsets - offsets[0]


@dataclass
class Draw:
    """One epoch's draw: a row per sampled track; frame positions, -1 where the variant has none."""

    track: np.ndarray
    anchor: np.ndarray
    positive: np.ndarray
    neg_anchor: np.ndarray
    neg_positive: np.ndarray


class PairsIndex:
    """``pairs.parquet`` flattened into arrays for fast per-epoch sampling."""

    def __init__(self, table: pa.Table, positive_s: tuple[float, float]) -> None:
        self.positive_s = tuple(positive_s)
        self.video_id = np.array(table.column("video_id").to_pylist(), dtype=object)
        self.identity = np.array(table.column("identity").to_pylist(), dtype=object)
        self.status = np.array(table.column("status").to_pylist(), dtype=object)
        crop, self.track_start = _flat(table.column("crop_index"))
        self.frame_crop = crop.astype(np.int64)
        self.frame_t = _flat(table.column("t_s"))[0].astype(np.float64)
        self.frame_idx = _flat(table.column("frame_idx"))[0].astype(np.int64)
        n = np.diff(self.track_start)
        self.frame_track = np.repeat(np.arange(len(n)), n)
        self.frame_shard = np.repeat(table.column("shard").to_numpy(), n).astype(np.int64)
        self.has_pos = _flat(table.column("has_pos"))[0].astype(bool)
        self.anchor_hard_neg = _flat(table.column("anchor_hard_neg"))[0].astype(bool)
        self.neg_before_end = _flat(table.column("neg_before_end"))[0].astype(np.int64)
        self.neg_after_start = _flat(table.column("neg_after_start"))[0].astype(np.int64)
        pos_lists = table.column("pos_index").combine_chunks().flatten()     # list<int32> per frame
        off_lists = table.column("pos_offset_s").combine_chunks().flatten()
        self.pos_start = pos_lists.offsets.to_numpy() - pos_lists.offsets.to_numpy()[0]
        self.pos_local = pos_lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        self.pos_offset = off_lists.flatten().to_numpy(zero_copy_only=False).astype(np.float64)

    @classmethod
    def read(cls, path: str) -> PairsIndex:
        """Load ``pairs.parquet``; the positive window comes from its provenance."""
        cfg = read_provenance(path)["config"]["pairs"]
        return cls(pq.read_table(path), tuple(cfg["positive_s"]))

    @property
    def n_frames(self) -> int:
        return len(self.frame_crop)

    def eligible_tracks(self, time_aug: bool, hard_neg: bool) -> np.ndarray:
        """Tracks the variant can draw from (the others are counted, not used)."""
        flag = self._can_anchor(time_aug, hard_neg)
        per_track = np.bincount(self.frame_track, weights=flag, minlength=len(self.track_start) - 1)
        return np.flatnonzero(per_track > 0)

    def _can_anchor(self, time_aug: bool, hard_neg: bool) -> np.ndarray:
        """Frames that can be the anchor under the variant."""
        if hard_neg and time_aug:
            return self.anchor_hard_neg
        if hard_neg:      # any frame far enough from another one
            n = np.diff(self.track_start)[self.frame_track]
            return (self.neg_before_end > 0) | (self.neg_after_start < n)
        return self.has_pos if time_aug else np.ones(self.n_frames, bool)

    def draw(self, seed: int, epoch: int, time_aug: bool, hard_neg: bool, distribution: str = "c") -> Draw:
        """Draw one (A, P, NA, NP) per eligible track for ``epoch``; deterministic in (seed, epoch)."""
        rng = np.random.default_rng([seed, epoch])
        tracks = self.eligible_tracks(time_aug, hard_neg)
        can_anchor = self._can_anchor(time_aug, hard_neg)
        out = {k: np.full(len(tracks), -1, np.int64) for k in ("anchor", "positive", "neg_anchor", "neg_positive")}
        for row, tr in enumerate(tracks):
            s, e = self.track_start[tr], self.track_start[tr + 1]
            a = s + rng.choice(np.flatnonzero(can_anchor[s:e]))
            out["anchor"][row] = a
            out["positive"][row] = self._positive(a, s, rng, distribution) if time_aug else a
            if hard_neg:
                na = self._hard_negative(a, s, e, rng, time_aug)
                out["neg_anchor"][row] = na
                out["neg_positive"][row] = self._positive(na, s, rng, distribution) if time_aug else na
        return Draw(tracks, out["anchor"], out["positive"], out["neg_anchor"], out["neg_positive"])

    def _positive(self, frame: int, start: int, rng: np.random.Generator, distribution: str) -> int:
        lo, hi = self.pos_start[frame], self.pos_start[frame + 1]
        w = offset_weights(self.pos_offset[lo:hi], self.positive_s, distribution)
        return int(start + self.pos_local[lo + rng.choice(hi - lo, p=w / w.sum())])

    def _hard_negative(self, frame: int, start: int, end: int, rng: np.random.Generator, time_aug: bool) -> int:
        ok = self.has_pos[start:end] if time_aug else np.ones(end - start, bool)
        before = np.flatnonzero(ok[: self.neg_before_end[frame]])
        after = self.neg_after_start[frame] + np.flatnonzero(ok[self.neg_after_start[frame]:])
        sides = [side for side in (before, after) if len(side)]
        side = sides[rng.integers(len(sides))] if len(sides) > 1 else sides[0]
        return int(start + rng.choice(side))
