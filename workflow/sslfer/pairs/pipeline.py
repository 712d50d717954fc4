"""The pairs rules (``workflow/rules/pairs.smk``), one function per rule: the TimeAug/HardNeg index and the summary
of the trainer's precomputed inputs (pairs, swaps, descriptors: their tables' status columns)."""

from __future__ import annotations

import logging
from collections import Counter

import pyarrow.parquet as pq

from ..files import write_json
from ..parquet import provenance, write_parquet
from ..rulejob import Job
from .index import build_pairs
from .sampler import PairsIndex

log = logging.getLogger(__name__)


def pairs_index(job: Job) -> None:
    """``pairs.parquet`` for a corpus."""
    cfg = job.params["pairs"]
    table = build_pairs(job.inputs["manifest"], list(job.inputs["shards"]), cfg)
    counts = Counter(table.column("status").to_pylist())
    write_parquet(table, job.outputs["pairs"],
                  provenance("pairs_index", None, {"pairs": cfg}, status_counts=dict(sorted(counts.items()))))


def _status_counts(files: list[str]) -> dict:
    counts: Counter = Counter()
    for f in files:
        counts.update(pq.read_table(f, columns=["status"]).column("status").to_pylist())
    return dict(sorted(counts.items()))


def pairs_summary(job: Job) -> None:
    """Per-corpus counts of the trainer's inputs: tracks per status and per variant, swap and descriptor rates."""
    idx = PairsIndex.read(job.inputs["pairs"])
    swap_counts, desc_counts = _status_counts(job.inputs["swaps"]), _status_counts(job.inputs["descriptors"])
    summary = {
        "tracks": len(idx.video_id),
        "track_status": dict(sorted(Counter(idx.status.tolist()).items())),
        "usable_frames": idx.n_frames,
        "tracks_usable_by": {name: int(len(idx.eligible_tracks(ta, hn))) for name, ta, hn in
                             (("simclr", False, False), ("time_aug", True, False), ("hard_neg", False, True),
                              ("time_aug+hard_neg", True, True))},
        "swaps": sum(swap_counts.values()), "swap_status": swap_counts,
        "swap_ok_rate": round(swap_counts.get("ok", 0) / max(sum(swap_counts.values()), 1), 4),
        "descriptors": sum(desc_counts.values()), "descriptor_status": desc_counts,
    }
    write_json(summary, job.outputs["summary"])
    log.info("summary: %s", summary)
