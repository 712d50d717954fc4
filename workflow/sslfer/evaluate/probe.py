"""Linear probes and identity probes on frozen-encoder features (float arrays ``(n, d)``).

Every probe standardises features with statistics of its training rows only, chooses its regularisation on a
seeded split of the TRAINING rows (the test rows never enter selection), refits on all training rows and
scores the test rows once. Splits are made per class (and per group where groups are given: a group, e.g. a
face track, is never divided), in sorted class/group order with a ``numpy`` generator seeded from
``(seed, purpose)``, so the same inputs and seed give the same numbers. Results are plain JSON-ready dicts.

A probe that the data cannot support (too few classes, people, identities, tracks or rows) raises
:class:`NotComputable` with the reason and the counts behind it; :func:`measure` turns that into the recorded
``{"computable": false, "reason": ...}``. Inconsistent input (labels out of range, a track of two identities)
stays a plain ``ValueError``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .metrics import ccc, classification_report, pearson, rmse

log = logging.getLogger(__name__)

DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
DEFAULT_ALPHAS = (1e-1, 1.0, 10.0, 100.0, 1000.0)
MAX_ITER = 2000
# Generator streams: one per kind of split, so that nested splits are independent draws.
_SELECT, _IDENTIFY, _LEAK = 1, 2, 3


class NotComputable(ValueError):
    """The data cannot support this measure; ``reason`` says why, ``counts`` holds the numbers behind it."""

    def __init__(self, reason: str, **counts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.counts = {k: int(v) for k, v in counts.items()}

    def record(self) -> dict:
        """The measure's entry in a result file."""
        return {"computable": False, "reason": self.reason, **self.counts}


def measure(fn: Callable[..., dict], *args: Any, **kwargs: Any) -> dict:
    """``fn(*args, **kwargs)`` with ``"computable": True`` first, or its :class:`NotComputable` record (logged)."""
    try:
        return {"computable": True, **fn(*args, **kwargs)}
    except NotComputable as e:
        log.warning("%s: not computable: %s", getattr(fn, "__name__", "measure"), e.reason)
        return e.record()


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream])


def holdout_mask(labels: np.ndarray, fraction: float, rng: np.random.Generator,
                 groups: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of held-out rows: per label, ``round(fraction·k)`` of its k groups (at least 1, at most k−1).

    Groups default to single rows (a stratified split). Labels with one group stay entirely on the kept side.
    """
    labels = np.asarray(labels)
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    held = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        names = np.unique(groups[rows])
        if len(names) < 2:
            continue
        k = min(max(int(np.floor(fraction * len(names) + 0.5)), 1), len(names) - 1)
        held[rows[np.isin(groups[rows], rng.permutation(names)[:k])]] = True
    return held


def _fit_classifier(x: np.ndarray, y: np.ndarray, C: float, class_weight: str | None, seed: int):
    model = make_pipeline(
        StandardScaler(),
        LogisticRegression(C=C, solver="lbfgs", max_iter=MAX_ITER, class_weight=class_weight, random_state=seed),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("logistic regression (C=%g) did not converge in %d iterations", C, MAX_ITER)
    return model


def _labels(y: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y).reshape(-1)
    if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= n_classes)):
        raise ValueError(f"labels must be integers in [0, {n_classes})")
    return y


def linear_classifier(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                      seed: int, n_classes: int, select_fraction: float = 0.2, Cs: Sequence[float] = DEFAULT_CS,
                      class_weight: str | None = None, train_groups: np.ndarray | None = None,
                      detailed: bool = True, predictions: bool = False) -> dict:
    """Standardised multinomial logistic regression; C chosen by macro-F1 on a split of the training rows.

    ``class_weight="balanced"`` reweights classes by inverse frequency. ``train_groups`` (e.g. track ids) makes
    the selection split hold out whole groups; if that leaves nothing held out it falls back to a stratified
    row split (``selection_split`` says which). ``detailed=False`` drops per-class F1 and the confusion matrix;
    ``predictions=True`` adds ``test_predictions``: ``y_true`` and ``y_pred`` of the test rows, in their order.
    Returns the test metrics plus ``chosen_C`` and the per-C selection scores.
    """
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    train_y, test_y = _labels(train_y, n_classes), _labels(test_y, n_classes)
    if len(test_y) == 0:
        raise NotComputable("no test rows", n_train=len(train_y), n_test=0)
    if len(np.unique(train_y)) < 2:
        raise NotComputable("the training rows hold fewer than two classes", n_train=len(train_y),
                            n_train_classes=len(np.unique(train_y)))
    rng = _rng(seed, _SELECT)
    split = "groups" if train_groups is not None else "stratified"
    held = holdout_mask(train_y, select_fraction, rng, train_groups)
    if train_groups is not None and not held.any():
        log.warning("no class has two training groups; selecting C on a stratified row split")
        split, held = "stratified", holdout_mask(train_y, select_fraction, rng)
    if not held.any() or len(np.unique(train_y[~held])) < 2:
        raise NotComputable("the training rows are too few to hold out a selection split (no class has two "
                            "training rows)", n_train=len(train_y), n_train_classes=len(np.unique(train_y)))
    selection = []
    for C in Cs:
        model = _fit_classifier(train_x[~held], train_y[~held], C, class_weight, seed)
        rep = classification_report(train_y[held], model.predict(train_x[held]), n_classes)
        selection.append({"C": float(C), "macro_f1": rep["macro_f1"], "accuracy": rep["accuracy"]})
    best = max(range(len(selection)), key=lambda i: (selection[i]["macro_f1"], selection[i]["accuracy"], -i))
    chosen = selection[best]["C"]
    log.info("linear classifier: C=%g chosen on %d held-out training rows (%s)", chosen, int(held.sum()), split)
    model = _fit_classifier(train_x, train_y, chosen, class_weight, seed)
    pred = model.predict(test_x)
    report = classification_report(test_y, pred, n_classes)
    if not detailed:
        del report["per_class_f1"], report["confusion"]
    if predictions:
        report["test_predictions"] = {"y_true": test_y.tolist(), "y_pred": pred.tolist()}
    return {
        **report,
        "chosen_C": chosen,
        "selection": selection,
        "selection_split": split,
        "n_train": len(train_y),
        "n_select": int(held.sum()),
        "n_test": len(test_y),
        "class_weight": class_weight,
        "seed": int(seed),
    }


def _targets(v: np.ndarray, n: int, names: Sequence[str]) -> np.ndarray:
    """``(n, len(names))`` float64 targets (``n`` may be 0)."""
    v = np.asarray(v, np.float64)
    v = v.reshape(n, -1) if n else v.reshape(0, v.shape[-1] if v.ndim > 1 else len(names))
    if v.shape[1] != len(names):
        raise ValueError(f"targets need {len(names)} columns ({', '.join(names)})")
    return v


def linear_regressor(train_x: np.ndarray, train_v: np.ndarray, test_x: np.ndarray, test_v: np.ndarray,
                     seed: int, alphas: Sequence[float] = DEFAULT_ALPHAS, select_fraction: float = 0.2,
                     names: Sequence[str] = ("valence", "arousal")) -> dict:
    """Standardised ridge regression of ``(n, k)`` targets (default valence, arousal), predictions clipped to [−1, 1].

    Alpha is chosen by the mean per-dimension CCC on a random split of the training rows; reports CCC, true
    RMSE and Pearson r per dimension on the test rows.
    """
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    train_v, test_v = _targets(train_v, len(train_x), names), _targets(test_v, len(test_x), names)
    if len(test_v) == 0:
        raise NotComputable("no test rows with targets", n_train=len(train_v), n_test=0)
    n_held = min(max(int(np.floor(select_fraction * len(train_v) + 0.5)), 1), len(train_v) - 2)
    if n_held < 1:
        raise NotComputable("the training rows are too few to hold out a selection split (fewer than 3 rows "
                            "with targets)", n_train=len(train_v))
    held = np.zeros(len(train_v), bool)
    held[_rng(seed, _SELECT).permutation(len(train_v))[:n_held]] = True

    def fit(x: np.ndarray, v: np.ndarray, alpha: float):
        return make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(x, v)

    def scores(v: np.ndarray, p: np.ndarray) -> dict:
        p = np.clip(p.reshape(v.shape), -1.0, 1.0)
        return {
            name: {"ccc": ccc(v[:, j], p[:, j]), "rmse": rmse(v[:, j], p[:, j]), "pearson": pearson(v[:, j], p[:, j])}
            for j, name in enumerate(names)
        }

    selection = []
    for alpha in alphas:
        dims = scores(train_v[held], fit(train_x[~held], train_v[~held], alpha).predict(train_x[held]))
        selection.append({"alpha": float(alpha), "mean_ccc": float(np.mean([d["ccc"] for d in dims.values()]))})
    best = max(range(len(selection)),
               key=lambda i: (np.nan_to_num(selection[i]["mean_ccc"], nan=-np.inf), -i))
    chosen = selection[best]["alpha"]
    log.info("linear regressor: alpha=%g chosen on %d held-out training rows", chosen, n_held)
    dims = scores(test_v, fit(train_x, train_v, chosen).predict(test_x))
    return {
        **dims,
        "mean_ccc": float(np.mean([d["ccc"] for d in dims.values()])),
        "chosen_alpha": chosen,
        "selection": selection,
        "n_train": len(train_v),
        "n_select": n_held,
        "n_test": len(test_v),
        "seed": int(seed),
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity (a zero vector has similarity 0 to everything)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    return (a * b).sum(axis=1) / (na * nb)


def best_threshold(sim: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Threshold (predict "same" when sim > t) with the highest accuracy on these pairs, and that accuracy.

    Candidates are the midpoints between consecutive distinct similarities plus both ends; the lowest of
    equally good thresholds wins.
    """
    order = np.argsort(sim, kind="stable")
    s, y = sim[order], same[order].astype(bool)
    distinct = np.flatnonzero(np.diff(s) > 0)  # last index of each run of equal values, except the final run
    cuts = np.concatenate([[-1], distinct, [len(s) - 1]])  # rows 0..cut are predicted "different"
    below_diff = np.concatenate([[0], np.cumsum(~y)])[cuts + 1]
    above_same = y.sum() - np.concatenate([[0], np.cumsum(y)])[cuts + 1]
    acc = (below_diff + above_same) / len(s)
    i = int(np.argmax(acc))
    if cuts[i] < 0:
        t = s[0] - 1.0
    elif cuts[i] == len(s) - 1:
        t = s[-1]
    else:
        t = 0.5 * (s[cuts[i]] + s[cuts[i] + 1])
    return float(t), float(acc[i])


def pair_verification(feat_a: np.ndarray, feat_b: np.ndarray, same: np.ndarray,
                      folds: int | np.ndarray = 10) -> dict:
    """LFW-style verification: cosine similarity, per-fold threshold chosen on the other folds.

    ``folds`` is a fold count (contiguous equal blocks, the order of LFW's ``pairs.txt`` / ``fetch_lfw_pairs
    (subset="10_folds")``) or an explicit fold id per pair. Returns mean and (population) std of the per-fold
    accuracies, the per-fold accuracies and thresholds, and the ROC AUC over all pairs.
    """
    same = np.asarray(same).reshape(-1).astype(bool)
    sim = _cosine(feat_a, feat_b)
    if sim.shape != same.shape:
        raise ValueError(f"{len(sim)} pairs of features but {len(same)} labels")
    if len(same) == 0:
        raise NotComputable("no usable pairs", n_pairs=0)
    if np.isscalar(folds):
        fold = np.zeros(len(same), int)
        for k, rows in enumerate(np.array_split(np.arange(len(same)), int(folds))):
            fold[rows] = k
    else:
        fold = np.asarray(folds).reshape(-1)
    ids = np.unique(fold)
    if len(ids) < 2:
        raise NotComputable("pair verification needs usable pairs in at least two folds", n_pairs=len(same),
                            n_folds=len(ids))
    accs, thresholds = [], []
    for k in ids:
        test = fold == k
        t, _ = best_threshold(sim[~test], same[~test])
        accs.append(float(((sim[test] > t) == same[test]).mean()))
        thresholds.append(t)
    auc = float(roc_auc_score(same, sim)) if 0 < same.sum() < len(same) else float("nan")
    return {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracies": accs,
        "fold_thresholds": thresholds,
        "auc": auc,
        "n_pairs": len(same),
        "n_folds": len(ids),
    }


def _nearest_neighbour(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Label of each test row's most cosine-similar training row (first on ties)."""
    def unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    return train_y[np.argmax(unit(test_x) @ unit(train_x).T, axis=1)]


def identification(x: np.ndarray, people: np.ndarray, seed: int, test_fraction: float = 0.3,
                   min_per_person: int = 2, Cs: Sequence[float] = DEFAULT_CS) -> dict:
    """Closed-set people identification: per-person split, linear probe and cosine 1-NN accuracy.

    People with fewer than ``min_per_person`` (at least 2) images are dropped and counted. Fewer than two
    people left: :class:`NotComputable`. A linear probe the training images cannot support (no person with
    two training images to select C on) is recorded as not computable inside ``linear``; 1-NN still counts.
    """
    x, people = np.asarray(x), np.asarray(people).reshape(-1)
    names, counts = np.unique(people, return_counts=True)
    least = max(min_per_person, 2)
    keep_names = names[counts >= least]
    keep = np.isin(people, keep_names)
    if len(keep_names) < 2:
        raise NotComputable(f"fewer than two people have {least} or more images ({len(keep_names)} of "
                            f"{len(names)} people do)", n_people=len(keep_names), n_people_total=len(names))
    x, y = x[keep], np.searchsorted(keep_names, people[keep])
    test = holdout_mask(y, test_fraction, _rng(seed, _IDENTIFY))
    n = len(keep_names)
    linear = measure(linear_classifier, x[~test], y[~test], x[test], y[test], seed, n, Cs=Cs, detailed=False)
    nn1 = classification_report(y[test], _nearest_neighbour(x[~test], y[~test], x[test]), n)
    return {
        "linear": linear,
        "nn1": {"accuracy": nn1["accuracy"], "macro_f1": nn1["macro_f1"]},
        "chance": 1.0 / n,
        "n_people": int(n),
        "n_dropped_people": int(len(names) - n),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "seed": int(seed),
    }


def identity_leak(x: np.ndarray, identity: np.ndarray, track: np.ndarray, seed: int, test_fraction: float = 0.3,
                  Cs: Sequence[float] = DEFAULT_CS) -> dict:
    """Identity probe on pretraining frames, tested on held-out TRACKS of the training identities.

    Identities with fewer than two tracks are skipped and counted. C is selected on held-out training tracks.
    ``test_predictions`` holds, per test frame, its row of the input (``rows``), its track (``groups``: an index
    into the sorted test tracks), and its true and predicted identity (indices into the sorted kept identities).
    Chance is given both as 1/n_identities and as the test accuracy of always predicting the most frequent
    training identity. A corpus with fewer than two identities of two or more tracks (e.g. one video per
    person) cannot support the probe: :class:`NotComputable`.
    """
    x = np.asarray(x)
    identity, track = np.asarray(identity).reshape(-1), np.asarray(track).reshape(-1)
    pairs = np.unique(np.stack([track.astype(str), identity.astype(str)], axis=1), axis=0)
    tracks, n_owners = np.unique(pairs[:, 0], return_counts=True)
    if (n_owners > 1).any():
        raise ValueError(f"track {tracks[n_owners > 1][0]!r} belongs to more than one identity")
    names = np.unique(identity)
    n_tracks = np.array([len(np.unique(track[identity == name])) for name in names])
    keep_names = names[n_tracks >= 2]
    if len(keep_names) < 2:
        raise NotComputable(
            f"fewer than two identities have two or more tracks ({len(keep_names)} of {len(names)} identities, "
            f"{len(tracks)} tracks): the probe tests on held-out tracks of identities it was trained on",
            n_identities_total=len(names), n_identities_with_two_tracks=len(keep_names), n_tracks=len(tracks))
    keep = np.isin(identity, keep_names)
    x, track, y = x[keep], track[keep], np.searchsorted(keep_names, identity[keep])
    test = holdout_mask(y, test_fraction, _rng(seed, _LEAK), track)
    n = len(keep_names)
    result = linear_classifier(x[~test], y[~test], x[test], y[test], seed, n, Cs=Cs, train_groups=track[~test],
                               detailed=False, predictions=True)
    result["test_predictions"] = {"rows": np.flatnonzero(keep)[test].tolist(),
                                  "groups": np.unique(track[test], return_inverse=True)[1].tolist(),
                                  **result["test_predictions"]}
    majority = np.bincount(y[~test], minlength=n).argmax()
    return {
        **result,
        "chance_uniform": 1.0 / n,
        "chance_majority": float((y[test] == majority).mean()),
        "n_identities": int(n),
        "n_skipped_identities": int(len(names) - n),
        "n_train_tracks": len(np.unique(track[~test])),
        "n_test_tracks": len(np.unique(track[test])),
    }
