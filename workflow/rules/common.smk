# Shared definitions: the config is validated in the Snakefile before this file is read.

from pathlib import Path

SYNTH = config["synth"]["root"]
ENV = "../../envs/sslfer.yaml"


def synth_outputs():
    """Every file the synth rules promise (the inputs of rule `synth`)."""
    return [
        f"{SYNTH}/groundtruth/videos.parquet",
        f"{SYNTH}/groundtruth/affectnet.parquet",
        f"{SYNTH}/groundtruth/fer2013.parquet",
        f"{SYNTH}/groundtruth/lfw.parquet",
        "results/qc/synth_contact_sheet.png",
    ]


def corpus_inputs(wildcards):
    """The synth rule's output when the corpus lives under synth.root (so the DAG renders it first)."""
    path = Path(config["corpora"][wildcards.corpus]["path"]).resolve()
    root = Path(SYNTH).resolve()
    return [f"{SYNTH}/groundtruth/videos.parquet"] if path == root or root in path.parents else []


def shard_frames(wildcards):
    """Every shard's frames.parquet, from the manifest written by the checkpoint."""
    from sslfer.preprocess.pipeline import shard_ids

    manifest = checkpoints.preprocess_manifest.get(corpus=wildcards.corpus).output.manifest
    return expand(
        "results/{corpus}/frames/shard={shard}/frames.parquet",
        corpus=wildcards.corpus,
        shard=shard_ids(manifest),
    )
