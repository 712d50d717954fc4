"""Entry points of the evaluation rules."""

from __future__ import annotations

import logging
import re
import shutil

import torch

from ..parquet import provenance
from . import linear

log = logging.getLogger(__name__)


def run_rule(rule: str, inputs: dict, outputs: dict, params: dict, wildcards: dict, threads: int = 1) -> None:
    """Dispatch a Snakemake rule of the evaluation stage."""
    torch.set_num_threads(max(threads, 1))
    run = wildcards.get("run")
    if rule in ("eval_prepare", "eval_prepare_lfw"):
        from .faces import prepare_dataset

        name = wildcards["dataset"]
        prepare_dataset(name, params["dataset"], params["pre"], outputs["item_table"], outputs["crops"],
                        provenance(rule, params["seed"], {"dataset": params["dataset"], "preprocess": params["pre"]},
                                   dataset=name), pairs_out=outputs.get("pairs"), workers=max(threads, 1))
    elif rule == "eval_features":
        from .features import write_item_features

        aug = params["augment"]
        write_item_features(inputs["encoder"], inputs["item_table"], inputs["crops"], outputs["features"], aug["resize"],
                            aug["crop"], provenance("eval_features", params["seed"], {"augment": aug}, run=run,
                                                    dataset=wildcards["dataset"]),
                            batch_size=params["evaluation"]["batch_size"])
    elif rule == "eval_corpus_features":
        from .features import write_corpus_features

        aug, ev = params["augment"], params["evaluation"]
        write_corpus_features(inputs["encoder"], list(inputs["shards"]), outputs["features"],
                              ev["corpus_frames_per_track"], aug["resize"], aug["crop"],
                              provenance("eval_corpus_features", params["seed"], {"augment": aug}, run=run),
                              batch_size=ev["batch_size"])
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
                                   params["evaluation"]["lfw_min_images"])
        linear.write_json(res, outputs["result"])
    elif rule == "identity_leak":
        linear.write_json(linear.identity_leak(inputs["features"], run, params["seed"]), outputs["result"])
    elif rule == "default_result":
        shutil.copyfile(inputs["result"], outputs["result"])
    elif rule == "ablation":
        from .ablation import write_ablation

        runs: dict[str, list[dict[str, str]]] = {}
        for run_ in params["runs"]:
            key = re.sub(r"\W", "_", run_)          # as ablation_inputs() in common.smk
            files = {k.split("__")[1]: v for k, v in inputs.items() if k.startswith(f"{key}__")}
            runs.setdefault(run_.partition("/")[0], []).append(files)
        write_ablation(runs, params["variants"], params["seeds"], outputs["table"], outputs["json"], outputs["chart"])
    elif rule == "eval_finetune":
        from .finetune import finetune

        name = wildcards["dataset"]
        n, names = (8, linear.AFFECTNET_CLASSES) if name == "affectnet" else (7, linear.FER2013_CLASSES)
        aug = params["augment"]
        linear.write_json(finetune(inputs["encoder"], inputs["item_table"], inputs["crops"], n, names, aug["resize"],
                                   aug["crop"], params["finetune"], params["seed"], run, name), outputs["result"])
    elif rule == "figures":
        write_figures(inputs, outputs, run)
    else:
        raise ValueError(f"not an evaluation rule: {rule}")


def write_figures(inputs: dict, outputs: dict, run: str) -> None:
    """Training curves, confusion matrices and the 2-D embedding plot of one run."""
    import json
    from pathlib import Path

    import numpy as np
    import pyarrow.parquet as pq

    from . import plots
    from .features import features_numpy

    plots.training_curves(Path(inputs["encoder"]).parent / "metrics.jsonl", outputs["training"], f"pretraining: {run}")
    for name in ("affectnet", "fer2013"):
        res = json.loads(Path(inputs[name]).read_text())
        plots.confusion_matrix(res["expression"]["confusion"], res["classes"], outputs[name],
                               f"{name}, linear probe (accuracy {res['expression']['accuracy']:.3f})")
    items = pq.read_table(inputs["affectnet_items"]).to_pandas()
    x = features_numpy(pq.read_table(inputs["affectnet_features"]).column("feature"))
    sel = np.isfinite(x).all(1) & (items.split == "test").to_numpy() & items.label.between(0, 7).to_numpy()
    corpus = pq.read_table(inputs["corpus_features"])
    plots.embedding_plot(x[sel], [linear.AFFECTNET_CLASSES[k] for k in items.label[sel]],
                         features_numpy(corpus.column("feature")), corpus.column("identity").to_pylist(),
                         outputs["embedding"], f"frozen features of {run} (PCA)")
