"""Entry points of the preprocessing rules: manifest, one shard, per-corpus summary."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..parquet import provenance, read_provenance, write_parquet
from .manifest import build_manifest
from .shard import ShardConfig, process_shard

log = logging.getLogger(__name__)


def shard_config(pre: dict, device: str = "cpu") -> ShardConfig:
    """:class:`ShardConfig` from the ``preprocess`` config section (and the top-level ``device`` setting)."""
    return ShardConfig(sample_fps=pre["sample_fps"], decoder=pre["decoder"], detector=pre["detect"]["backend"],
                       upsample=pre["detect"]["upsample"], max_side=pre["detect"]["max_side"],
                       landmarks=pre["landmarks"]["backend"], crop_size=pre["crop_size"],
                       detector_model_dir=pre["detect"].get("model_dir"), track_face_px=pre["detect"]["track_face_px"],
                       fan_weights=pre["landmarks"].get("fan_weights"),
                       landmarks_model_dir=pre["landmarks"].get("model_dir"), device=str(device),
                       video_timeout_s=pre.get("video_timeout_s", ShardConfig.video_timeout_s))


def write_manifest(corpus: dict, pre: dict, out: str | Path, seed: int | None, workers: int = 1) -> None:
    """Probe the corpus (``workers`` files at a time) and write ``videos.parquet``."""
    table = build_manifest(corpus["format"], corpus["path"], corpus.get("meta"), pre["shard_size"], pre["min_track_s"],
                           workers=workers)
    counts = Counter(table.column("status").to_pylist())
    log.info("manifest: %d videos in %d shards; status %s", table.num_rows,
             len(set(table.column("shard").to_pylist())), dict(sorted(counts.items())))
    write_parquet(table, out, provenance("preprocess_manifest", seed, {"corpus": corpus, "preprocess": pre},
                                         status_counts=dict(sorted(counts.items()))))


def shard_ids(manifest: str | Path) -> list[str]:
    """Zero-padded shard numbers present in a manifest."""
    shards = pq.read_table(manifest, columns=["shard"]).column("shard").to_pylist()
    return [f"{s:05d}" for s in sorted(set(shards))]


def run_shard(manifest: str | Path, shard: int, pre: dict, frames_out: str | Path, crops_out: str | Path,
              seed: int, device: str = "cpu") -> Counter:
    """Process shard ``shard`` of the manifest (``device``: the config key, for fan / insightface)."""
    table = pq.read_table(manifest)
    sub = table.filter(pc.equal(table.column("shard"), shard))
    cfg = shard_config(pre, device)
    prov = provenance("preprocess_shard", seed, {"preprocess": pre}, shard=shard,
                      backends={"decode": cfg.decoder, "detect": cfg.detector, "landmarks": cfg.landmarks})
    return process_shard(sub, cfg, frames_out, crops_out, prov)


def write_summary(manifest: str | Path, shard_files: list[str], out: str | Path) -> dict:
    """Per-corpus summary: video statuses from the manifest, frame statuses from every shard."""
    videos = Counter(pq.read_table(manifest, columns=["status"]).column("status").to_pylist())
    frames: Counter = Counter()
    for f in shard_files:
        frames.update(read_provenance(f).get("status_counts", {}))
    summary = {"videos": sum(videos.values()), "video_status": dict(sorted(videos.items())),
               "frames": sum(frames.values()), "frame_status": dict(sorted(frames.items())), "shards": len(shard_files)}
    Path(out).write_text(json.dumps(summary, indent=2) + "\n")
    log.info("summary: %s", summary)
    return summary


def run_rule(rule: str, inputs: dict, outputs: dict, params: dict, wildcards: dict, threads: int = 1) -> None:
    """Dispatch a Snakemake rule to the function above."""
    if rule == "preprocess_manifest":
        write_manifest(params["corpus"], params["pre"], outputs["manifest"], params.get("seed"), workers=threads)
    elif rule == "preprocess_shard":
        run_shard(inputs["manifest"], int(wildcards["shard"]), params["pre"], outputs["frames"], outputs["crops"],
                  params.get("seed"), params.get("device") or "cpu")
    elif rule == "preprocess_summary":
        write_summary(inputs["manifest"], list(inputs["shards"]), outputs["summary"])
    elif rule == "preprocess_qc":
        from .qc import write_crops_sheet

        write_crops_sheet(outputs["sheet"], list(inputs["shards"]), seed=params["seed"])
    else:
        raise ValueError(f"not a preprocessing rule: {rule}")
