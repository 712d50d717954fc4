# Shared definitions: the config is validated in the Snakefile before this file is read.

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
    from sslfer.config import is_generated

    generated = is_generated(config["corpora"][wildcards.corpus]["path"], SYNTH)
    return [f"{SYNTH}/groundtruth/videos.parquet"] if generated else []


def shard_frames(wildcards):
    """Every shard's frames.parquet, from the manifest written by the checkpoint."""
    from sslfer.preprocess.pipeline import shard_ids

    manifest = checkpoints.preprocess_manifest.get(corpus=wildcards.corpus).output.manifest
    return expand(
        "results/{corpus}/frames/shard={shard}/frames.parquet",
        corpus=wildcards.corpus,
        shard=shard_ids(manifest),
    )
