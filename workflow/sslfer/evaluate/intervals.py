"""Interval arithmetic of the ablation: seed-paired t-intervals and a paired test-set bootstrap (numpy/scipy).

- :func:`t_interval`: ``mean(d) ± t_{(1+level)/2, n−1} · sd(d) / √n`` over paired differences ``d`` (``sd``
  with ``ddof=1``); undefined (None) for fewer than two differences.
- :func:`resample_weights`: bootstrap resamples of ``n`` units as multinomial counts, one row per replicate.
  Weighting every unit by its count is the same as recomputing the metric on the resampled test set, and
  the same weights applied to two runs make the resample paired.
- :func:`unit_counts` → :func:`replicate_metric`: a test set's additive counts per unit (rows, correct rows
  and, for macro-F1, per class true, predicted and correct rows); a replicate's accuracy or macro-F1 follows
  from ``weights @ counts``. Macro-F1 averages over the classes present in the (resampled) true ∪ predicted
  labels, as :func:`.metrics.classification_report` does.
- :func:`percentile_interval`, :func:`hull` (the smallest interval holding all given ones) and
  :func:`excludes_zero`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

Interval = tuple[float, float]


def t_interval(d: Sequence[float], level: float = 0.95) -> Interval | None:
    """Student-t interval of the mean of paired differences ``d`` (None for fewer than two)."""
    d = np.asarray(d, np.float64)
    if d.size < 2:
        return None
    half = stats.t.ppf((1 + level) / 2, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)


def resample_weights(n_units: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """``(replicates, n_units)`` counts: how often each unit is drawn in each resample of ``n_units`` draws."""
    if n_units == 0:
        return np.zeros((replicates, 0), np.int32)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=replicates).astype(np.int32)


def unit_counts(units: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_units: int,
                n_classes: int = 0) -> np.ndarray:
    """``(n_units, 2 + 3·n_classes)`` per unit: rows, correct rows, then per class true, predicted and correct
    rows (``n_classes=0``: accuracy only). ``units[i]`` is row i's unit (a test item, or its group)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct = y_true == y_pred
    cols = [np.ones(len(y_true)), correct]
    if n_classes:
        eye = np.eye(n_classes)
        cols += [eye[y_true].T, eye[y_pred].T, (eye[y_true] * correct[:, None]).T]
    rows = np.vstack(cols).T
    out = np.zeros((n_units, rows.shape[1]))
    np.add.at(out, np.asarray(units), rows)
    return out


def replicate_metric(weights: np.ndarray, counts: np.ndarray, metric: str) -> np.ndarray:
    """``accuracy`` or ``macro_f1`` per replicate (a row of ``weights``; ``nan`` where it draws no rows)."""
    c = np.atleast_2d(weights) @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            return c[:, 1] / c[:, 0]
        if metric != "macro_f1":
            raise ValueError(f"unknown metric {metric!r}")
        k = (counts.shape[1] - 2) // 3
        true, pred, tp = c[:, 2:2 + k], c[:, 2 + k:2 + 2 * k], c[:, 2 + 2 * k:]
        present = true + pred > 0
        f1 = np.where(present, 2 * tp / np.where(present, true + pred, 1), 0.0)
        return f1.sum(axis=1) / present.sum(axis=1)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> Interval | None:
    """The central ``level`` share of the finite samples (None if there are none)."""
    s = np.asarray(samples, np.float64)
    s = s[np.isfinite(s)]
    if not s.size:
        return None
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def hull(*intervals: Interval | None) -> Interval | None:
    """The smallest interval holding every given one (None when none is given)."""
    given = [iv for iv in intervals if iv is not None]
    if not given:
        return None
    return min(lo for lo, _ in given), max(hi for _, hi in given)


def excludes_zero(interval: Interval | None) -> bool:
    """Whether the interval lies entirely above or entirely below 0."""
    return interval is not None and (interval[0] > 0 or interval[1] < 0)
