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


def per_shard(*patterns):
    """Input function: every pattern expanded over the corpus's shards, read from the manifest (a checkpoint)."""

    def inputs(wildcards):
        from sslfer.preprocess.pipeline import shard_ids

        manifest = checkpoints.preprocess_manifest.get(corpus=wildcards.corpus).output.manifest
        return expand(list(patterns), corpus=wildcards.corpus, shard=shard_ids(manifest))

    return inputs


shard_frames = per_shard("results/{corpus}/frames/shard={shard}/frames.parquet")


def pretrain_inputs(wildcards):
    """The corpus's pairs index, crops, and the swaps / descriptors only when the variant uses them."""
    from types import SimpleNamespace

    variant = config["pretrain"]["variants"][wildcards.variant]
    corpus = SimpleNamespace(corpus=config["corpus"])
    inputs = {"pairs": f"results/{corpus.corpus}/pairs.parquet",
              "crops": per_shard("results/{corpus}/frames/shard={shard}/crops.npy")(corpus)}
    if variant["face_swap"]:
        inputs["swaps"] = per_shard("results/{corpus}/swaps/shard={shard}/swaps.npy")(corpus)
    if variant["mask_fn"] != "off":
        inputs["descriptors"] = per_shard("results/{corpus}/descriptors/shard={shard}/descriptors.parquet")(corpus)
    return inputs
