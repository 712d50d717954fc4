"""Entry points of the rules that precompute the trainer's inputs: pairs index, swaps, descriptors, summary."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from ..parquet import provenance, write_parquet
from ..layout import shard_of
from .index import build_pairs

log = logging.getLogger(__name__)


def write_pairs(manifest: str, shard_files: list[str], cfg: dict, out: str, seed: int) -> None:
    """``pairs.parquet`` for a corpus."""
    table = build_pairs(manifest, shard_files, cfg)
    counts = Counter(table.column("status").to_pylist())
    write_parquet(table, out, provenance("pairs_index", seed, {"pairs": cfg}, status_counts=dict(sorted(counts.items()))))


def _status_counts(files: list[str]) -> dict:
    counts: Counter = Counter()
    for f in files:
        counts.update(pq.read_table(f, columns=["status"]).column("status").to_pylist())
    return dict(sorted(counts.items()))


def write_summary(pairs: str, swaps: list[str], descriptors: list[str], out: str) -> dict:
    """Per-corpus counts of the trainer's inputs: tracks per status and per variant, swap and descriptor rates."""
    from .sampler import PairsIndex

    idx = PairsIndex.read(pairs)
    swap_counts, desc_counts = _status_counts(swaps), _status_counts(descriptors)
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
    Path(out).write_text(json.dumps(summary, indent=2) + "\n")
    log.info("summary: %s", summary)
    return summary


def run_rule(rule: str, inputs: dict, outputs: dict, params: dict, wildcards: dict) -> None:
    """Dispatch a Snakemake rule to the function above or to the swap / descriptor stages."""
    if rule == "pairs_index":
        write_pairs(inputs["manifest"], list(inputs["shards"]), params["pairs"], outputs["pairs"], None)
    elif rule == "swap_shard":
        from ..swap.shard import swap_shard

        shard = int(wildcards["shard"])
        prov = provenance("swap_shard", params["seed"], {"swap": params["swap"]}, shard=shard)
        swap_shard(list(inputs["shards"]), shard, outputs["swaps"], outputs["images"], params["swap"], params["seed"],
                   prov)
    elif rule == "descriptors_shard":
        from ..descriptors.shard import describe_shard

        prov = provenance("descriptors_shard", None, {"descriptors": params["descriptors"]},
                          shard=shard_of(outputs["descriptors"]))
        describe_shard(inputs["frames"], inputs["crops"], outputs["descriptors"], params["descriptors"], prov,
                       params.get("device") or "cpu")
    elif rule == "swap_qc":
        from ..swap.qc import write_swaps_sheet

        write_swaps_sheet(outputs["sheet"], list(inputs["swaps"]), list(inputs["shards"]), seed=params["seed"])
    elif rule == "pairs_summary":
        write_summary(inputs["pairs"], list(inputs["swaps"]), list(inputs["descriptors"]), outputs["summary"])
    else:
        raise ValueError(f"not a pairs-stage rule: {rule}")
