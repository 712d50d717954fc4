# Shared definitions: the config is validated in the Snakefile before this file is read.

import re

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


# A pretraining "run" is a variant name, or "<variant>/seed=<n>" for another seed than config["seed"]
# (the ablation's extra seeds); "random" is the untrained encoder, the ablation's floor.
VARIANT_RUN = "(" + "|".join(re.escape(v) for v in config["pretrain"]["variants"]) + r")(/seed=\d+)?"
RANDOM_RUN = r"random(/seed=\d+)?"
EVAL_DATASETS = ["affectnet", "fer2013", "lfw"]


def run_variant(run):
    """The variant name of a run."""
    return run.split("/")[0]


def run_seed(run):
    """The seed of a run."""
    seed = run.partition("/")[2]
    return int(seed.removeprefix("seed=")) if seed else config["seed"]


def run_name(variant, seed):
    """The run of a variant and seed."""
    return variant if seed == config["seed"] else f"{variant}/seed={seed}"


def ablation_runs():
    """Every run the ablation table needs: each evaluated variant (and the random floor) × each seed."""
    variants = config["evaluation"]["ablation_variants"] or list(config["pretrain"]["variants"])
    return [run_name(v, s) for v in variants + ["random"] for s in config["evaluation"]["seeds"]]


def pretrain_inputs(wildcards):
    """The corpus's pairs index, crops, and the swaps / descriptors only when the variant uses them."""
    from types import SimpleNamespace

    variant = config["pretrain"]["variants"][run_variant(wildcards.run)]
    corpus = SimpleNamespace(corpus=config["corpus"])
    inputs = {"pairs": f"results/{corpus.corpus}/pairs.parquet",
              "crops": per_shard("results/{corpus}/frames/shard={shard}/crops.npy")(corpus)}
    if variant["face_swap"]:
        inputs["swaps"] = per_shard("results/{corpus}/swaps/shard={shard}/swaps.npy")(corpus)
    if variant["mask_fn"] != "off":
        inputs["descriptors"] = per_shard("results/{corpus}/descriptors/shard={shard}/descriptors.parquet")(corpus)
    return inputs


def eval_dataset_inputs(wildcards):
    """The synth rule's output when the dataset is the generated one (so the DAG renders it first)."""
    from sslfer.config import is_generated

    ds = config["datasets"][wildcards.dataset]
    path = ds.get("path", ds.get("data_home"))
    return [f"{SYNTH}/groundtruth/{wildcards.dataset}.parquet"] if is_generated(path, SYNTH) else []


def shard_frames_of_config_corpus(wildcards):
    """Every shard's frames.parquet of the pretraining corpus (for the identity-leak features)."""
    from types import SimpleNamespace

    return shard_frames(SimpleNamespace(corpus=config["corpus"]))


def ablation_inputs(wildcards):
    """Per ablation run, its three dataset results and its identity-leak result."""
    files = {}
    for run in ablation_runs():
        key = re.sub(r"\W", "_", run)
        for name in EVAL_DATASETS:
            files[f"{key}__{name}"] = f"results/eval/{run}/{name}_linear.json"
        files[f"{key}__identity_leak"] = f"results/eval/{run}/identity_leak.json"
    return files


def lfw_pairs_input(wildcards):
    """LFW's verification pairs (the other datasets have none)."""
    return {"pairs": "results/eval/data/lfw/pairs.parquet"} if wildcards.dataset == "lfw" else {}
