"""Evaluation metrics as plain functions returning Python floats, ints and lists (JSON-ready).

Regression: Lin's concordance correlation (:func:`ccc`), true root-mean-square error (:func:`rmse`; the
reference code reported MSE under that name) and Pearson's r (:func:`pearson`), all with population
moments. A correlation that is undefined (a constant input) is ``nan``.

Classification: :func:`classification_report` gives accuracy, macro-F1, per-class F1 and the confusion
matrix. Macro-F1 follows scikit-learn's default ``f1_score(average="macro")``: it averages over the classes
present in ``y_true ∪ y_pred``; a class that is true but never predicted, or predicted but never true, scores
F1 = 0. A class absent from both is left out of the mean and its per-class F1 is ``None``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score


def _pair(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float64 copies of two equal-length, non-empty vectors."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need two non-empty vectors of equal length, got {y.size} and {p.size}")
    return y, p


def ccc(y: np.ndarray, p: np.ndarray) -> float:
    """Lin's concordance 2·cov(y,p) / (var y + var p + (mean y − mean p)²), population moments."""
    y, p = _pair(y, p)
    dy, dp = y - y.mean(), p - p.mean()
    denom = (dy**2).mean() + (dp**2).mean() + (y.mean() - p.mean()) ** 2
    return float(2.0 * (dy * dp).mean() / denom) if denom > 0 else float("nan")


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    """Root-mean-square error sqrt(mean((y − p)²))."""
    y, p = _pair(y, p)
    return float(np.sqrt(((y - p) ** 2).mean()))


def pearson(y: np.ndarray, p: np.ndarray) -> float:
    """Pearson's correlation coefficient (``nan`` when either input is constant)."""
    y, p = _pair(y, p)
    dy, dp = y - y.mean(), p - p.mean()
    denom = np.sqrt((dy**2).sum() * (dp**2).sum())
    return float((dy * dp).sum() / denom) if denom > 0 else float("nan")


def classification_report(y: np.ndarray, p: np.ndarray, n_classes: int) -> dict:
    """Accuracy, macro-F1, per-class F1 (``None`` for classes in neither input), confusion (rows = true)."""
    y = np.asarray(y).reshape(-1)
    p = np.asarray(p).reshape(-1)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need two non-empty label vectors of equal length, got {y.size} and {p.size}")
    for name, v in (("true", y), ("predicted", p)):
        if not np.issubdtype(v.dtype, np.integer) or v.min() < 0 or v.max() >= n_classes:
            raise ValueError(f"{name} labels must be integers in [0, {n_classes}), got {v.dtype} {v.min()}..{v.max()}")
    labels = list(range(n_classes))
    per_class = f1_score(y, p, labels=labels, average=None, zero_division=0.0)
    present = np.zeros(n_classes, bool)
    present[np.union1d(y, p)] = True
    return {
        "n": int(y.size),
        "accuracy": float((y == p).mean()),
        "macro_f1": float(per_class[present].mean()),
        "per_class_f1": [float(f) if ok else None for f, ok in zip(per_class, present)],
        "confusion": confusion_matrix(y, p, labels=labels).tolist(),
    }
