"""The evaluation rules (``workflow/rules/evaluate.smk`` and ``report.smk``), one function per rule: aligned crops
per dataset, frozen features, the probes' results, the default result, the ablation, fine-tuning, figures.
Batch sizes and threads come from the config, not params: they do not shape the results."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import torch

from ..files import sha256_file, write_json
from ..parquet import provenance, read_provenance, write_parquet
from ..rulejob import Job
from . import protocol

log = logging.getLogger(__name__)


def _provenance_of_result(job: Job) -> dict:
    """What a result was measured with: the corpus and training data of its encoder, the dataset and its inputs."""
    feats = read_provenance(job.inputs["features"])
    out = {"corpus": job.wildcards.get("corpus"), "encoder": feats.get("encoder"),
           "encoder_sha256": feats.get("encoder_sha256"), "training_data": feats.get("training_data")}
    if "item_table" in job.inputs:
        out["dataset_inputs"] = _dataset_inputs(job.inputs["item_table"], job.params["dataset_path"])
    return out


def _dataset_inputs(item_table: str, path: str) -> dict:
    """An evaluation set's path, its input fingerprint (made by ``eval_prepare``) and its item table's hash."""
    return dict(read_provenance(item_table).get("dataset_inputs") or {}, path=path,
                items_sha256=sha256_file(item_table), items_file=str(Path(item_table)))


def _encoder_training_data(encoder: str) -> dict:
    """The corpus, steps and training-data fingerprint recorded in ``encoder.pt`` (``{}`` for the untrained one)."""
    record = torch.load(encoder, map_location="cpu", weights_only=False)
    cfg = record.get("config") or {}
    return {"corpus": cfg.get("corpus"), "variant": cfg.get("variant"), "seed": cfg.get("seed"),
            "steps": record.get("steps"), "data_digest": record.get("data_digest")}


def _threads(job: Job) -> None:
    torch.set_num_threads(max(job.threads, 1))


def eval_prepare(job: Job) -> None:
    """An evaluation set's aligned crops and item table (and LFW's pairs), with its input fingerprint."""
    import pyarrow.parquet as pq

    from .faces import prepare_dataset
    from .fingerprint import dataset_fingerprint

    _threads(job)
    name, dataset, faces = job.wildcards["dataset"], job.params["dataset"], job.params["faces"]
    items_out = job.outputs["item_table"]
    prepare_dataset(name, dataset, faces, items_out, job.outputs["crops"],
                    provenance(job.rule, None,
                               {"dataset": dataset, "preprocess": faces}, dataset=name),
                    pairs_out=job.outputs.get("pairs"), workers=max(job.threads, 1),
                    device=job.params["device"] or "cpu")
    items = pq.read_table(items_out)
    fingerprint = dataset_fingerprint(dataset, items)
    log.info("%s: input fingerprint %s (%d source files, metadata %s)", name, fingerprint["input_fingerprint"],
             fingerprint["source_files"], fingerprint["metadata_files"])
    write_parquet(items, items_out, dict(read_provenance(items_out), dataset_inputs=fingerprint))


def eval_prepare_lfw(job: Job) -> None:
    """LFW's aligned crops, item table and verification pairs (:func:`eval_prepare`)."""
    eval_prepare(job)


def eval_features(job: Job) -> None:
    """Frozen features of an evaluation set's crops, seen through the evaluation view."""
    from .features import write_item_features

    _threads(job)
    inputs, view, wc = job.inputs, job.params["view"], job.wildcards
    write_item_features(inputs["encoder"], inputs["item_table"], inputs["crops"], job.outputs["features"],
                        view["resize"], view["crop"],
                        provenance("eval_features", None, {"view": view}, run=wc["run"], dataset=wc["dataset"],
                                   corpus=wc["corpus"], training_data=_encoder_training_data(inputs["encoder"])),
                        batch_size=job.config["evaluation"]["batch_size"], device=job.params["device"])


def eval_corpus_features(job: Job) -> None:
    """Frozen features of held-out frames of the pretraining corpus (for the identity leak)."""
    from .features import write_corpus_features

    _threads(job)
    inputs, view, wc = job.inputs, job.params["view"], job.wildcards
    write_corpus_features(inputs["encoder"], list(inputs["shards"]), job.outputs["features"],
                          job.params["frames_per_track"], view["resize"], view["crop"],
                          provenance("eval_corpus_features", None, {"view": view}, run=wc["run"],
                                     corpus=wc["corpus"], training_data=_encoder_training_data(inputs["encoder"])),
                          batch_size=job.config["evaluation"]["batch_size"], device=job.params["device"])


def eval_linear(job: Job) -> None:
    """The linear probes of one dataset on one run's frozen features."""
    _threads(job)
    inputs, name, run, seed = job.inputs, job.wildcards["dataset"], job.wildcards["run"], job.params["seed"]
    if name == "affectnet":
        res = protocol.expression_result(name, inputs["item_table"], inputs["features"], run, seed, 8,
                                         protocol.AFFECTNET_CLASSES, valence_arousal=True)
    elif name == "fer2013":
        res = protocol.expression_result(name, inputs["item_table"], inputs["features"], run, seed, 7,
                                         protocol.FER2013_CLASSES, valence_arousal=False)
    else:
        res = protocol.lfw_result(inputs["item_table"], inputs["features"], inputs["pairs"], run, seed,
                                  job.params["lfw_min_images"])
    res.update(_provenance_of_result(job))
    write_json(res, job.outputs["result"])


def identity_leak(job: Job) -> None:
    """The identity probe on held-out tracks of the pretraining corpus."""
    _threads(job)
    res = protocol.identity_leak_result(job.inputs["features"], job.wildcards["run"], job.params["seed"])
    res.update(_provenance_of_result(job))
    write_json(res, job.outputs["result"])


def default_result(job: Job) -> None:
    """The default variant's result, copied to ``results/``."""
    shutil.copyfile(job.inputs["result"], job.outputs["result"])


def ablation(job: Job) -> None:
    """The ablation table, JSON and chart over variants × seeds."""
    from .ablation import write_ablation

    _threads(job)
    runs: dict[str, list[dict[str, str]]] = {}
    for run in job.params["runs"]:
        key = re.sub(r"\W", "_", run)          # as ablation_inputs() in common.smk
        files = {k.split("__")[1]: v for k, v in job.inputs.items() if k.startswith(f"{key}__")}
        runs.setdefault(run.partition("/")[0], []).append(files)   # per variant, in the order of seeds
    out = job.outputs
    write_ablation(runs, job.params["variants"], job.params["seeds"], out["table"], out["json"], out["chart"],
                   corpus=job.params["corpus"])


def eval_finetune(job: Job) -> None:
    """End-to-end fine-tuning of one run's encoder on an expression dataset."""
    from .finetune import finetune

    _threads(job)
    inputs, params, name = job.inputs, job.params, job.wildcards["dataset"]
    n, names = (8, protocol.AFFECTNET_CLASSES) if name == "affectnet" else (7, protocol.FER2013_CLASSES)
    view = params["view"]
    res = finetune(inputs["encoder"], inputs["item_table"], inputs["crops"], n, names, view["resize"], view["crop"],
                   params["finetune"], params["seed"], job.wildcards["run"], name, device=params["device"])
    res.update(corpus=job.wildcards["corpus"], training_data=_encoder_training_data(inputs["encoder"]),
               dataset_inputs=_dataset_inputs(inputs["item_table"], params["dataset_path"]))
    write_json(res, job.outputs["result"])


def figures(job: Job) -> None:
    """Training curves, confusion matrices and the 2-D embedding plot of one run."""
    from .plots import write_figures

    _threads(job)
    write_figures(job.inputs, job.outputs, job.wildcards["run"])
