"""The descriptors rule (``workflow/rules/descriptors.smk``): one shard's MaskFN descriptors."""

from __future__ import annotations

from ..layout import shard_of
from ..parquet import provenance
from ..rulejob import Job
from .shard import DescriptorConfig, describe_shard


def descriptors_shard(job: Job) -> None:
    """The eye/mouth descriptors of every frame of the shard."""
    cfg = job.params["descriptors"]
    prov = provenance("descriptors_shard", None, {"descriptors": cfg}, shard=shard_of(job.outputs["descriptors"]))
    describe_shard(job.inputs["frames"], job.inputs["crops"], job.outputs["descriptors"],
                   DescriptorConfig.from_config(cfg), prov, job.params["device"] or "cpu")
