"""The evaluation protocol per dataset: cached features + labels (files) → one result record, through the probes of
:mod:`.probe` (which work on arrays).

- AffectNet: 8 expressions (linear classifier) and valence/arousal (linear regressor), trained on the
  training list, tested on the official validation list; hyper-parameters chosen on a split of training.
- FER2013: 7 expressions, trained on ``Training``, tested on the split the reader calls ``test``.
- LFW: 10-fold pair verification on the embedding and a people-identification probe.
- Identity leak: identity predicted from held-out tracks of the pretraining corpus.

Every result carries the encoder path and hash, dataset sizes, the counts of excluded items, the seed and
the protocol; :func:`sslfer.files.write_json` writes ``NaN`` (an undefined metric) as ``null``. Each measure (``expression``, ``valence``,
``arousal``, ``verification``, ``identification``, the identity-leak file as a whole) has ``computable``:
``false`` with a ``reason`` (and the counts behind it) where the corpus or evaluation set cannot support it
(see :class:`.probe.NotComputable`); the other measures are still computed.

The expression and identity-leak measures also hold ``test_predictions``: per test row, its row of the item
table (of the corpus features for the identity leak), its true and its predicted class, for the ablation's
paired test-set bootstrap (:mod:`.differences`). The test rows follow from the items and the probe seed, not
from the encoder (except rows whose features are not finite, which drop out), so two encoders' lists pair
up row by row.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ..parquet import read_provenance
from . import probe
from .features import features_numpy

log = logging.getLogger(__name__)

AFFECTNET_CLASSES = ["Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt"]
FER2013_CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]


def _load(items: str | Path, features: str | Path):
    tab = pq.read_table(items).to_pandas()
    feats = pq.read_table(features)
    if feats.column("item_id").to_pylist() != tab.item_id.tolist():
        raise ValueError(f"{features} does not match {items} row for row")
    return tab, features_numpy(feats.column("feature")), read_provenance(features)


def _header(dataset: str, run: str, prov: dict, seed: int, tab) -> dict:
    return {"dataset": dataset, "run": run, "protocol": "linear", "seed": seed,
            "encoder": prov.get("encoder"), "encoder_sha256": prov.get("encoder_sha256"),
            "items": len(tab), "item_status": dict(sorted(Counter(tab.status).items()))}


def expression_result(dataset: str, items: str, features: str, run: str, seed: int, n_classes: int,
                     class_names: list[str], valence_arousal: bool) -> dict:
    """AffectNet / FER2013: expression classifier (and valence/arousal regressor) on usable items."""
    tab, x, prov = _load(items, features)
    result = _header(dataset, run, prov, seed, tab)
    usable = (tab.crop_index >= 0).to_numpy() & np.isfinite(x).all(1) & (tab.label >= 0).to_numpy() \
        & (tab.label < n_classes).to_numpy()
    train = usable & (tab.split == "train").to_numpy()
    test = usable & (tab.split == "test").to_numpy()
    y = tab.label.to_numpy()
    result["sizes"] = {"train": int(train.sum()), "test": int(test.sum()),
                       "train_per_class": np.bincount(y[train], minlength=n_classes).tolist(),
                       "test_per_class": np.bincount(y[test], minlength=n_classes).tolist()}
    result["excluded"] = {k: int(v) for k, v in Counter(tab.status[~usable]).items()}
    result["classes"] = class_names
    result["expression"] = expr = probe.measure(probe.linear_classifier, x[train], y[train], x[test], y[test],
                                                seed, n_classes, predictions=True)
    if expr["computable"]:
        expr["test_predictions"] = {"rows": np.flatnonzero(test).tolist(), **expr["test_predictions"]}
    if valence_arousal:
        va = tab[["valence", "arousal"]].to_numpy(np.float64)
        has = np.isfinite(va).all(1)
        result["valence_arousal_sizes"] = {"train": int((train & has).sum()), "test": int((test & has).sum())}
        va_res = probe.measure(probe.linear_regressor, x[train & has], va[train & has], x[test & has],
                               va[test & has], seed)
        if va_res["computable"]:
            result["valence"] = {"computable": True, **va_res.pop("valence")}
            result["arousal"] = {"computable": True, **va_res.pop("arousal")}
        else:
            result["valence"] = result["arousal"] = va_res
        result["valence_arousal"] = va_res
    if expr["computable"]:
        log.info("%s: accuracy %.3f, macro-F1 %.3f (train %d, test %d)", dataset, expr["accuracy"],
                 expr["macro_f1"], train.sum(), test.sum())
    return result


def lfw_result(items: str, features: str, pairs: str, run: str, seed: int, min_images: int) -> dict:
    """LFW: 10-fold pair verification (cosine, thresholds from the other folds) + people identification."""
    tab, x, prov = _load(items, features)
    result = _header("lfw", run, prov, seed, tab)
    pairs_tab = pq.read_table(pairs).to_pandas()
    pos = {item: k for k, item in enumerate(tab.item_id)}
    a = pairs_tab.item_a.map(pos).to_numpy()
    b = pairs_tab.item_b.map(pos).to_numpy()
    ok = np.isfinite(x[a]).all(1) & np.isfinite(x[b]).all(1)
    result["pairs"] = {"total": len(pairs_tab), "usable": int(ok.sum()), "folds": int(pairs_tab.fold.nunique())}
    result["verification"] = probe.measure(probe.pair_verification, x[a[ok]], x[b[ok]],
                                           pairs_tab.same.to_numpy()[ok], folds=pairs_tab.fold.to_numpy()[ok])
    rows = np.flatnonzero(((tab.role == "people") & (tab.crop_index >= 0)).to_numpy() & np.isfinite(x).all(1))
    result["identification"] = probe.measure(probe.identification, x[rows], tab.identity.to_numpy()[rows], seed,
                                             min_per_person=min_images)
    ver, ident = result["verification"], result["identification"]
    log.info("lfw: verification %s, identification %s",
             f"{ver['accuracy_mean']:.3f}" if ver["computable"] else "not computable",
             f"{ident['linear']['accuracy']:.3f}" if ident["computable"] and ident["linear"]["computable"]
             else "not computable")
    return result


def identity_leak_result(features: str, run: str, seed: int) -> dict:
    """Identity probe on held-out tracks of the pretraining corpus (``computable: false`` with the reason where
    the corpus cannot support it, e.g. one video per person)."""
    tab = pq.read_table(features)
    prov = read_provenance(features)
    x = features_numpy(tab.column("feature"))
    res = probe.measure(probe.identity_leak, x, np.asarray(tab.column("identity").to_pylist(), dtype=str),
                        np.asarray(tab.column("video_id").to_pylist(), dtype=str), seed)
    if res["computable"]:
        log.info("identity leak: accuracy %.3f (chance %.3f)", res["accuracy"], res["chance_uniform"])
    return {"dataset": "pretraining corpus", "run": run, "protocol": "linear identity probe, held-out tracks",
            "seed": seed, "encoder": prov.get("encoder"), "encoder_sha256": prov.get("encoder_sha256"),
            "frames": tab.num_rows, **res}
