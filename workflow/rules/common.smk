# Shared definitions: the config is validated in the Snakefile before this file is read.

import os
import re

SYNTH = config["synth"]["root"]
# the synthetic root as a file-name part, so that building a second root keeps the first one's logs
SYNTH_KEY = re.sub(r"[^A-Za-z0-9]+", "_", SYNTH).strip("_") or "root"
CORPUS = config["corpus"]      # the configured pretraining corpus: results/{CORPUS}/…
ENV = "../../envs/sslfer.yaml"


def canonical(value):
    """``value`` with every mapping's keys sorted: Snakemake compares params by their text, so the order in which a
    config file happens to list keys must not make a job look changed."""
    import json

    return json.loads(json.dumps(value, sort_keys=True))


def uses_synth():
    """True when the configured corpus or an evaluation dataset lives under synth.root (then `all` renders it)."""
    from sslfer.config import is_generated

    paths = [config["corpora"][config["corpus"]]["path"]]
    paths += [ds.get("path", ds.get("data_home")) for ds in config["datasets"].values()]
    return any(is_generated(p, SYNTH) for p in paths)


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
    """The synth rule's output when the corpus lives under synth.root (so the DAG renders it first); else its
    listing files (a csv corpus's CSV, the meta file), so that editing them reruns the manifest."""
    from sslfer.config import is_generated

    corpus = config["corpora"][wildcards.corpus]
    if is_generated(corpus["path"], SYNTH):
        return [f"{SYNTH}/groundtruth/videos.parquet"]
    if not os.path.exists(corpus["path"]):  # only the configured corpus's paths are checked up front
        raise ValueError(f"config key 'corpora.{wildcards.corpus}.path': path '{corpus['path']}' does not exist "
                         f"(nor is it under synth.root, {SYNTH}, where the workflow would generate it)")
    return ([corpus["path"]] if corpus["format"] == "csv" else []) + ([corpus["meta"]] if "meta" in corpus else [])


def per_shard(*patterns):
    """Input function: every pattern expanded over the corpus's shards, read from the manifest (a checkpoint)."""

    def inputs(wildcards):
        from sslfer.layout import shard_ids

        manifest = checkpoints.preprocess_manifest.get(corpus=wildcards.corpus).output.manifest
        return expand(list(patterns), corpus=wildcards.corpus, shard=shard_ids(manifest))

    return inputs


shard_frames = per_shard("results/{corpus}/frames/shard={shard}/frames.parquet")
shard_crops = per_shard("results/{corpus}/frames/shard={shard}/crops.npy")
shard_swap_tables = per_shard("results/{corpus}/swaps/shard={shard}/swaps.parquet")
shard_swaps = per_shard("results/{corpus}/swaps/shard={shard}/swaps.npy")
shard_descriptors = per_shard("results/{corpus}/descriptors/shard={shard}/descriptors.parquet")


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


def pretrain_settings(wildcards):
    """What shapes a run's encoder: the `pretrain` section without the variant table (the run's own switches under
    `switches`), the job's threads and the checkpoint and monitor intervals (so changing those reruns nothing)."""
    pre = config["pretrain"]
    settings = {k: v for k, v in pre.items()
                if k not in ("variant", "variants", "threads", "checkpoint_every", "monitor_every")}
    settings["switches"] = pre["variants"][run_variant(wildcards.run)]
    return canonical(settings)


def pretrain_inputs(wildcards):
    """The corpus's manifest, pairs index, frame tables and crops; swaps / descriptors only when the variant uses
    them (every file the training-data fingerprint covers)."""
    variant = config["pretrain"]["variants"][run_variant(wildcards.run)]
    inputs = {"manifest": f"results/{wildcards.corpus}/videos.parquet",
              "pairs": f"results/{wildcards.corpus}/pairs.parquet",
              "frames": shard_frames(wildcards),
              "crops": shard_crops(wildcards)}
    if variant["face_swap"]:
        inputs["swap_tables"] = shard_swap_tables(wildcards)
        inputs["swaps"] = shard_swaps(wildcards)
    if variant["mask_fn"] != "off":
        inputs["descriptors"] = shard_descriptors(wildcards)
    if config["pretrain"]["monitor_every"] > 0:       # the monitor's expression set (its training items only)
        inputs["monitor_items"] = "results/eval/data/affectnet/items.parquet"
        inputs["monitor_crops"] = "results/eval/data/affectnet/crops.npy"
    return inputs


def dataset_path(name):
    """The configured path of evaluation dataset `name` (`data_home` for LFW)."""
    ds = config["datasets"][name]
    return ds.get("path", ds.get("data_home"))


def eval_dataset_inputs(wildcards):
    """The synth rule's output when the dataset is the generated one (so the DAG renders it first); else its
    label and list files, so that editing them reruns its preparation."""
    from sslfer.config import is_generated
    from sslfer.evaluate.fingerprint import metadata_files

    if is_generated(dataset_path(wildcards.dataset), SYNTH):
        return [f"{SYNTH}/groundtruth/{wildcards.dataset}.parquet"]
    return [str(f) for f in metadata_files(config["datasets"][wildcards.dataset])]


def face_settings():
    """The `preprocess` settings that aligning still images uses (detection, landmarks, crop size; the
    tracked-face and smallest-face searches are for videos only)."""
    pre = config["preprocess"]
    return canonical({"detect": dict(pre["detect"], track_face_px=0, min_face=0), "landmarks": pre["landmarks"],
                      "crop_size": pre["crop_size"]})


def face_device():
    """`device` where the face backends can use it (fan, insightface), else None: the dlib and OpenCV
    backends run on the CPU whatever it says, so changing it must not rerun them."""
    pre = config["preprocess"]
    gpu = pre["detect"]["backend"] == "insightface" or pre["landmarks"]["backend"] in ("fan", "insightface")
    return config["device"] if gpu else None


def feature_settings():
    """What shapes frozen features: the evaluation view (resize and centre crop), not the training augmentations."""
    return canonical(config["evaluation"]["view"])


def ablation_inputs(wildcards):
    """Per ablation run of the configured corpus, its three dataset results and its identity-leak result."""
    files = {}
    for run in ablation_runs():
        key = re.sub(r"\W", "_", run)
        for name in EVAL_DATASETS:
            files[f"{key}__{name}"] = f"results/{CORPUS}/eval/{run}/{name}_linear.json"
        files[f"{key}__identity_leak"] = f"results/{CORPUS}/eval/{run}/identity_leak.json"
    return files


def lfw_pairs_input(wildcards):
    """LFW's verification pairs (the other datasets have none)."""
    return {"pairs": "results/eval/data/lfw/pairs.parquet"} if wildcards.dataset == "lfw" else {}
