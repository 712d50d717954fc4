"""Entry points of the evaluation rules."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import torch

from ..files import sha256_file
from ..parquet import provenance, read_provenance, write_parquet
from . import linear

log = logging.getLogger(__name__)


def _provenance_of_result(inputs: dict, params: dict, wildcards: dict) -> dict:
    """What a result was measured with: the corpus and training data of its encoder, the dataset and its inputs."""
    feats = read_provenance(inputs["features"])
    out = {"corpus": wildcards.get("corpus"), "encoder": feats.get("encoder"),
           "encoder_sha256": feats.get("encoder_sha256"), "training_data": feats.get("training_data")}
    if "item_table" in inputs:
        out["dataset_inputs"] = _dataset_inputs(inputs["item_table"], params["dataset_path"])
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


def run_rule(rule: str, inputs: dict, outputs: dict, params: dict, wildcards: dict, threads: int = 1,
             config: dict | None = None) -> None:
    """Dispatch a Snakemake rule of the evaluation stage (``config``: the workflow config, for the settings that
    do not shape outputs: batch sizes)."""
    config = config or {}
    torch.set_num_threads(max(threads, 1))
    run = wildcards.get("run")
    batch_size = config.get("evaluation", {}).get("batch_size", 256)
    if rule in ("eval_prepare", "eval_prepare_lfw"):
        import pyarrow.parquet as pq

        from .faces import prepare_dataset
        from .fingerprint import dataset_fingerprint

        from ..preprocess.shard import ShardConfig

        name = wildcards["dataset"]
        # still images: the video-only settings (sampling rate, decoder) are the defaults and unused
        faces = {"sample_fps": ShardConfig.sample_fps, "decoder": ShardConfig.decoder, **params["faces"]}
        prepare_dataset(name, params["dataset"], faces, outputs["item_table"], outputs["crops"],
                        provenance(rule, None, {"dataset": params["dataset"], "preprocess": params["faces"]},
                                   dataset=name), pairs_out=outputs.get("pairs"), workers=max(threads, 1),
                        device=params["device"] or "cpu")
        items = pq.read_table(outputs["item_table"])
        fingerprint = dataset_fingerprint(params["dataset"], items)
        log.info("%s: input fingerprint %s (%d source files, metadata %s)", name, fingerprint["input_fingerprint"],
                 fingerprint["source_files"], fingerprint["metadata_files"])
        write_parquet(items, outputs["item_table"],
                      dict(read_provenance(outputs["item_table"]), dataset_inputs=fingerprint))
    elif rule == "eval_features":
        from .features import write_item_features

        view = params["view"]
        write_item_features(inputs["encoder"], inputs["item_table"], inputs["crops"], outputs["features"],
                            view["resize"], view["crop"],
                            provenance("eval_features", None, {"view": view}, run=run, dataset=wildcards["dataset"],
                                       corpus=wildcards["corpus"],
                                       training_data=_encoder_training_data(inputs["encoder"])),
                            batch_size=batch_size, device=params["device"])
    elif rule == "eval_corpus_features":
        from .features import write_corpus_features

        view = params["view"]
        write_corpus_features(inputs["encoder"], list(inputs["shards"]), outputs["features"],
                              params["frames_per_track"], view["resize"], view["crop"],
                              provenance("eval_corpus_features", None, {"view": view}, run=run,
                                         corpus=wildcards["corpus"],
                                         training_data=_encoder_training_data(inputs["encoder"])),
                              batch_size=batch_size, device=params["device"])
    elif rule == "eval_linear":
        name, seed = wildcards["dataset"], params["seed"]
        if name == "affectnet":
            res = linear.expression_probe(name, inputs["item_table"], inputs["features"], run, seed, 8,
                                          linear.AFFECTNET_CLASSES, valence_arousal=True)
        elif name == "fer2013":
            res = linear.expression_probe(name, inputs["item_table"], inputs["features"], run, seed, 7,
                                          linear.FER2013_CLASSES, valence_arousal=False)
        else:
            res = linear.lfw_probe(inputs["item_table"], inputs["features"], inputs["pairs"], run, seed,
                                   params["lfw_min_images"])
        res.update(_provenance_of_result(inputs, params, wildcards))
        linear.write_json(res, outputs["result"])
    elif rule == "identity_leak":
        res = linear.identity_leak(inputs["features"], run, params["seed"])
        res.update(_provenance_of_result(inputs, params, wildcards))
        linear.write_json(res, outputs["result"])
    elif rule == "default_result":
        shutil.copyfile(inputs["result"], outputs["result"])
    elif rule == "ablation":
        from .ablation import write_ablation

        runs: dict[str, list[dict[str, str]]] = {}
        for run_ in params["runs"]:
            key = re.sub(r"\W", "_", run_)          # as ablation_inputs() in common.smk
            files = {k.split("__")[1]: v for k, v in inputs.items() if k.startswith(f"{key}__")}
            runs.setdefault(run_.partition("/")[0], []).append(files)   # per variant, in the order of seeds
        write_ablation(runs, params["variants"], params["seeds"], outputs["table"], outputs["json"], outputs["chart"],
                       corpus=params["corpus"])
    elif rule == "eval_finetune":
        from .finetune import finetune

        name = wildcards["dataset"]
        n, names = (8, linear.AFFECTNET_CLASSES) if name == "affectnet" else (7, linear.FER2013_CLASSES)
        view = params["view"]
        res = finetune(inputs["encoder"], inputs["item_table"], inputs["crops"], n, names, view["resize"],
                       view["crop"], params["finetune"], params["seed"], run, name, device=params["device"])
        res.update(corpus=wildcards["corpus"], training_data=_encoder_training_data(inputs["encoder"]),
                   dataset_inputs=_dataset_inputs(inputs["item_table"], params["dataset_path"]))
        linear.write_json(res, outputs["result"])
    elif rule == "figures":
        write_figures(inputs, outputs, run)
    else:
        raise ValueError(f"not an evaluation rule: {rule}")


def write_figures(inputs: dict, outputs: dict, run: str) -> None:
    """Training curves, confusion matrices and the 2-D embedding plot of one run."""
    import json

    import numpy as np
    import pyarrow.parquet as pq

    from . import plots
    from .features import features_numpy

    plots.training_curves(Path(inputs["encoder"]).parent / "metrics.jsonl", outputs["training"], f"pretraining: {run}")
    for name in ("affectnet", "fer2013"):          # the confusion matrix, or the reason it is not computable
        plots.expression_confusion(json.loads(Path(inputs[name]).read_text()), outputs[name], name)
    items = pq.read_table(inputs["affectnet_items"]).to_pandas()
    x = features_numpy(pq.read_table(inputs["affectnet_features"]).column("feature"))
    sel = np.isfinite(x).all(1) & (items.split == "test").to_numpy() & items.label.between(0, 7).to_numpy()
    corpus = pq.read_table(inputs["corpus_features"])
    plots.embedding_plot(x[sel], [linear.AFFECTNET_CLASSES[k] for k in items.label[sel]],
                         features_numpy(corpus.column("feature")), corpus.column("identity").to_pylist(),
                         outputs["embedding"], f"frozen features of {run} (PCA)")
