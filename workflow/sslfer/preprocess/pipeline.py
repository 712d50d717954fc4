"""The preprocessing rules (``workflow/rules/preprocess.smk``), one function per rule: manifest, one shard, the
per-corpus summary, the QC sheet."""

from __future__ import annotations

import logging
from collections import Counter

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..files import write_json
from ..parquet import provenance, read_provenance, write_parquet
from ..rulejob import Job
from .manifest import build_manifest
from .shard import ShardConfig, process_shard

log = logging.getLogger(__name__)


def preprocess_manifest(job: Job) -> None:
    """Probe the corpus (``threads`` files at a time) and write ``videos.parquet``."""
    corpus, pre = job.params["corpus"], job.params["pre"]
    table = build_manifest(corpus["format"], corpus["path"], corpus.get("meta"), pre["shard_size"], pre["min_track_s"],
                           workers=job.threads)
    counts = Counter(table.column("status").to_pylist())
    log.info("manifest: %d videos in %d shards; status %s", table.num_rows,
             len(set(table.column("shard").to_pylist())), dict(sorted(counts.items())))
    write_parquet(table, job.outputs["manifest"],
                  provenance("preprocess_manifest", None, {"corpus": corpus, "preprocess": pre},
                             status_counts=dict(sorted(counts.items()))))


def preprocess_shard(job: Job) -> None:
    """Decode, detect, landmark and align the videos of one shard of the manifest."""
    shard, pre = int(job.wildcards["shard"]), job.params["pre"]
    table = pq.read_table(job.inputs["manifest"])
    sub = table.filter(pc.equal(table.column("shard"), shard))
    cfg = ShardConfig.from_config(pre, job.params["device"] or "cpu")
    prov = provenance("preprocess_shard", None, {"preprocess": pre}, shard=shard,
                      backends={"decode": cfg.decoder, "detect": cfg.detector, "landmarks": cfg.landmarks})
    process_shard(sub, cfg, job.outputs["frames"], job.outputs["crops"], prov)


def preprocess_summary(job: Job) -> None:
    """Per-corpus summary: video statuses from the manifest, frame statuses from every shard."""
    shard_files = list(job.inputs["shards"])
    videos = Counter(pq.read_table(job.inputs["manifest"], columns=["status"]).column("status").to_pylist())
    frames: Counter = Counter()
    for f in shard_files:
        frames.update(read_provenance(f).get("status_counts", {}))
    summary = {"videos": sum(videos.values()), "video_status": dict(sorted(videos.items())),
               "frames": sum(frames.values()), "frame_status": dict(sorted(frames.items())), "shards": len(shard_files)}
    write_json(summary, job.outputs["summary"])
    log.info("summary: %s", summary)


def preprocess_qc(job: Job) -> None:
    """The QC contact sheet of aligned crops."""
    from .qc import write_crops_sheet

    write_crops_sheet(job.outputs["sheet"], list(job.inputs["shards"]), seed=job.params["seed"])
