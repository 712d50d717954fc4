"""The swap rules (``workflow/rules/swap.smk``), one function per rule: one shard's face swaps, the QC sheet."""

from __future__ import annotations

from ..parquet import provenance
from ..rulejob import Job
from .shard import SwapConfig, swap_shard as write_swaps


def swap_shard(job: Job) -> None:
    """Swap every frame of the shard onto donors of the whole corpus."""
    shard, seed, cfg = int(job.wildcards["shard"]), job.params["seed"], job.params["swap"]
    write_swaps(list(job.inputs["shards"]), shard, job.outputs["swaps"], job.outputs["images"],
                SwapConfig.from_config(cfg), seed, provenance("swap_shard", seed, {"swap": cfg}, shard=shard))


def swap_qc(job: Job) -> None:
    """The QC sheet of swaps beside their expression frames."""
    from .qc import write_swaps_sheet

    write_swaps_sheet(job.outputs["sheet"], list(job.inputs["swaps"]), list(job.inputs["shards"]),
                      seed=job.params["seed"])
