"""Seed-paired differences between the ablation's runs, their intervals, and what each strategy measurably does.

A difference compares a variant ``v`` with a reference ``r`` (the variant with every switch off, i.e. plain
SimCLR, and the untrained floor ``random``; for a strategy, the variant without that one switch) on one metric
(:data:`DIFF_METRICS`). Runs are paired by seed: ``d_s = metric(v, s) − metric(r, s)`` over the seeds both
have, and the point estimate is ``mean(d)``. Two sources of noise get an interval each:

- **seeds**: the t-interval of ``mean(d)`` (:func:`.intervals.t_interval`): how much another pretraining seed
  could move the difference. Undefined with one seed.
- **test set**: a paired percentile bootstrap (:func:`.intervals.percentile_interval`): each replicate resamples
  the test set's units with replacement, the same resample for both runs and for every seed (a resampled test
  set is one that every encoder would have been scored on), recomputes both runs' metric from their stored
  per-item predictions (``test_predictions``, see :mod:`.protocol`) and takes the seed-mean of the differences.
  A unit is an image for AffectNet and FER2013, and a held-out track for the identity leak (the frames of a
  track are not independent, so resampling frames would understate the noise). Without stored predictions
  (results written before they were recorded) there is no bootstrap.

The reported ``interval`` is the hull of the two (the smallest interval holding both), so it excludes 0
exactly when both do: a difference counts as distinguishable from noise only when neither another seed nor
another test sample would plausibly erase it. We do not resample seeds inside the bootstrap: with the few
seeds an ablation affords, a bootstrap over seeds is far too narrow, while the t-interval is exact for normal
seed noise. With one seed the interval is the bootstrap alone, and ``method`` says so.

A strategy's claim (:data:`CLAIMS`: expression up, identity down) is ``measured`` when a pair of variants that
differ in that switch alone has an interval on the claimed side of 0, ``measured opposite`` when it is on the
other side, and ``indistinguishable from noise`` when it holds 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from .intervals import (Interval, excludes_zero, hull, percentile_interval, replicate_metric, resample_weights,
                        t_interval, unit_counts)

LEVEL = 0.95
REPLICATES = 1000
BOOTSTRAP_SEED = 0
#: key → (result file, path to the measure inside it, the measure's field)
DIFF_METRICS = {"affectnet_f1": ("affectnet", ("expression",), "macro_f1"),
                "affectnet_acc": ("affectnet", ("expression",), "accuracy"),
                "fer2013_acc": ("fer2013", ("expression",), "accuracy"),
                "identity_leak": ("identity_leak", (), "accuracy")}
#: (claim, the sign of the claimed effect, the metrics that test it)
CLAIMS = [("expression up", 1, ("affectnet_f1", "fer2013_acc")), ("identity down", -1, ("identity_leak",))]
STRATEGIES = {"time_aug": "TimeAug", "hard_neg": "HardNeg", "face_swap": "FaceSwap", "mask_fn": "MaskFN"}
FLOOR = "random"
#: the method, in words, for the JSON
METHOD = {"difference": "variant minus reference, paired by seed; the mean over the seeds both have",
          "seed_interval": "Student-t interval of the mean of the per-seed differences (two or more seeds)",
          "bootstrap_interval": "percentile interval of the seed-mean difference over paired resamples of the "
                                "test set (images; held-out tracks for the identity leak), the same resample "
                                "for both runs and every seed",
          "interval": "hull of the seed and bootstrap intervals (the bootstrap alone with one seed)",
          "distinguishable": "the interval excludes 0"}


def _measure(result: dict | None, key: str) -> dict | None:
    """The measure holding metric ``key`` in one run's results (None if absent)."""
    source, path, _ = DIFF_METRICS[key]
    m = (result or {}).get(source)
    for k in path:
        m = m.get(k) if isinstance(m, dict) else None
    return m if isinstance(m, dict) else None


def _value(result: dict | None, key: str) -> float | None:
    m = _measure(result, key)
    return None if m is None or m.get("computable") is False else m.get(DIFF_METRICS[key][2])


def _predictions(result: dict | None, key: str) -> dict | None:
    m = _measure(result, key)
    return None if m is None or m.get("computable") is False else m.get("test_predictions")


def _units(pred: dict) -> np.ndarray:
    """Each test row's resampling unit: its group (a track) where recorded, else the row itself."""
    return np.asarray(pred["groups"] if "groups" in pred else pred["rows"])


class PairedBootstrap:
    """Shared resamples of one test set's units, and runs' metric values on them (cached per run)."""

    def __init__(self, predictions: Sequence[dict], replicates: int, rng: np.random.Generator) -> None:
        self.ids = np.unique(np.concatenate([_units(p) for p in predictions])) if predictions else np.zeros(0, int)
        self.weights = resample_weights(len(self.ids), replicates, rng)
        self._cache: dict[tuple[int, str], tuple[dict, np.ndarray]] = {}   # (id, metric) → (predictions, values)

    def _metric(self, pred: dict, keep: np.ndarray | None, metric: str) -> np.ndarray:
        rows = slice(None) if keep is None else keep
        y_true, y_pred = np.asarray(pred["y_true"])[rows], np.asarray(pred["y_pred"])[rows]
        k = int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1 if metric == "macro_f1" else 0
        units = np.searchsorted(self.ids, _units(pred)[rows])
        return replicate_metric(self.weights, unit_counts(units, y_true, y_pred, len(self.ids), k), metric)

    def values(self, pred: dict, metric: str, keep: np.ndarray | None = None) -> np.ndarray:
        """The metric of one run's predictions (only rows ``keep``) on every resample."""
        if keep is not None:
            return self._metric(pred, keep, metric)
        if (id(pred), metric) not in self._cache:        # the predictions are kept, so their id is not reused
            self._cache[id(pred), metric] = pred, self._metric(pred, None, metric)
        return self._cache[id(pred), metric][1]

    def difference(self, a: dict, b: dict, metric: str) -> np.ndarray:
        """Per resample, the metric of run ``a`` minus that of run ``b`` on the test rows both have."""
        if a["rows"] == b["rows"]:
            return self.values(a, metric) - self.values(b, metric)
        _, ia, ib = np.intersect1d(a["rows"], b["rows"], return_indices=True)
        return self.values(a, metric, ia) - self.values(b, metric, ib)


def paired_difference(v: list[dict | None], r: list[dict | None], key: str, seeds: Sequence[int],
                      boot: PairedBootstrap, level: float = LEVEL) -> dict | None:
    """Variant results ``v`` minus reference results ``r`` (per seed, aligned with ``seeds``) on metric ``key``:
    the mean, per-seed differences, both intervals and their hull. ``{"computable": false}`` where a seed
    has the measure recorded as not computable and none pairs up; None where nothing pairs up otherwise."""
    both = [i for i in range(min(len(v), len(r))) if _value(v[i], key) is not None and _value(r[i], key) is not None]
    if not both:
        nc = any((m := _measure(x, key)) is not None and m.get("computable") is False for x in [*v, *r])
        return {"computable": False} if nc else None
    d = [_value(v[i], key) - _value(r[i], key) for i in both]
    metric = DIFF_METRICS[key][2]
    paired = [i for i in both if _predictions(v[i], key) and _predictions(r[i], key)]
    draws = [boot.difference(_predictions(v[i], key), _predictions(r[i], key), metric) for i in paired]
    boot_iv = percentile_interval(np.mean(draws, axis=0), level) if draws else None
    seed_iv = t_interval(d, level)
    interval = hull(seed_iv, boot_iv)
    return {"mean": float(np.mean(d)), "n_seeds": len(d),
            "per_seed": [{"seed": seeds[i], "difference": x} for i, x in zip(both, d)],
            "seed_interval": seed_iv, "bootstrap_interval": boot_iv, "bootstrap_seeds": [seeds[i] for i in paired],
            "interval": interval, "method": _method(seed_iv, boot_iv), "distinguishable": excludes_zero(interval)}


def _method(seed_iv: Interval | None, boot_iv: Interval | None) -> str:
    if seed_iv and boot_iv:
        return "hull of the seed t-interval and the test-set bootstrap"
    if boot_iv:
        return "test-set bootstrap only (one seed: seed-to-seed variation not measured)"
    if seed_iv:
        return "seed t-interval only (no per-item test predictions)"
    return "none (one seed and no per-item test predictions)"


def _off(value: bool | str) -> bool:
    return value is False or value == "off"


def strategy_pairs(variants: dict[str, dict]) -> dict[str, list[tuple[str, str]]]:
    """Per switch, the (with, without) pairs of ``variants`` that differ in that switch alone, off in 'without'."""
    pairs: dict[str, list[tuple[str, str]]] = {s: [] for s in STRATEGIES}
    for a, sa in variants.items():
        for b, sb in variants.items():
            diff = [s for s in STRATEGIES if sa[s] != sb[s]]
            if len(diff) == 1 and _off(sb[diff[0]]) and not _off(sa[diff[0]]):
                pairs[diff[0]].append((a, b))
    return pairs


def baseline(variants: dict[str, dict]) -> str | None:
    """The first variant with every switch off (plain SimCLR), if any."""
    return next((name for name, sw in variants.items() if all(_off(sw[s]) for s in STRATEGIES)), None)


def verdict(record: dict | None, sign: int) -> str:
    """Whether a difference shows the claimed effect (of sign ``sign``), its opposite, or noise."""
    if record is None or "mean" not in record:
        return "not computable" if record else "no paired values"
    iv = record["interval"]
    if iv is None:
        return f"no interval ({record['mean']:+.3f}; one seed, no per-item test predictions)"
    if not excludes_zero(iv):
        return f"indistinguishable from noise ({format_interval(iv)})"
    side = "measured" if (iv[0] > 0) == (sign > 0) else "measured opposite"
    return f"{side} ({format_difference(record, bold=False)})"


def format_interval(iv: Interval) -> str:
    return f"[{iv[0]:+.3f}, {iv[1]:+.3f}]"


def format_difference(record: dict | None, bold: bool = True) -> str:
    """``+0.041 [+0.012, +0.070]`` (bold where the interval excludes 0 if ``bold``), ``n/c``, or ``–``."""
    if record is None or "mean" not in record:
        return "n/c" if record else "–"
    if record["interval"] is None:
        return f"{record['mean']:+.3f} (no interval)"
    text = f"{record['mean']:+.3f} {format_interval(record['interval'])}"
    return f"**{text}**" if bold and record["distinguishable"] else text


def _bootstraps(results: dict[str, list[dict | None]], replicates: int, seed: int) -> dict[str, PairedBootstrap]:
    """One bootstrap per result file with predictions, from every run's predictions of it."""
    boots = {}
    sources = {source: key for key, (source, _, _) in DIFF_METRICS.items()}     # a metric of each file
    for k, (source, key) in enumerate(sources.items()):
        preds = [p for runs in results.values() for res in runs if (p := _predictions(res, key))]
        boots[source] = PairedBootstrap(preds, replicates, np.random.default_rng([seed, k]))
    return boots


def differences(results: dict[str, list[dict | None]], variants: dict[str, dict], seeds: Sequence[int],
                replicates: int = REPLICATES, level: float = LEVEL, seed: int = BOOTSTRAP_SEED) -> dict:
    """Every variant against the baseline and the floor, and every strategy's single-switch pairs.

    ``results[run]`` lists per seed (aligned with ``seeds``; None where missing) the run's result files by name;
    ``variants`` are the switches of the trained runs (the floor is ``random``).
    """
    boots = _bootstraps(results, replicates, seed)

    def diff(a: str, b: str) -> dict:
        return {key: paired_difference(results[a], results[b], key, seeds, boots[DIFF_METRICS[key][0]], level)
                for key in DIFF_METRICS}

    trained = {v: sw for v, sw in variants.items() if v in results}
    refs = [r for r in (baseline(trained), FLOOR) if r in results]
    strategies = [{"strategy": STRATEGIES[s], "switch": s,
                   "pairs": [{"variant": a, "reference": b, "differences": diff(a, b)} for a, b in pairs]}
                  for s, pairs in strategy_pairs(trained).items()]
    return {"method": {**METHOD, "level": level, "replicates": replicates, "bootstrap_seed": seed,
                       "seeds": list(seeds)},
            "references": {r: {v: diff(v, r) for v in results if v not in (r, FLOOR)} for r in refs},
            "strategies": strategies}


def markdown(diffs: dict, titles: dict[str, str]) -> list[str]:
    """The paired-difference tables and one verdict line per strategy, as Markdown lines."""
    level = f"{100 * diffs['method']['level']:g} %"
    lines = ["## Paired differences", "",
             f"Variant minus reference, paired by seed, mean over seeds with a {level} interval: the hull of the "
             f"seed t-interval and a paired test-set bootstrap ({diffs['method']['replicates']} resamples of the test "
             "images, of the held-out tracks for the identity leak); with one seed, the bootstrap alone. **Bold**: "
             "the interval excludes 0. Only these differences are bolded.", ""]
    if not diffs["references"]:
        lines += ["No reference in the table: neither a variant with every switch off nor the untrained encoder.", ""]
    for ref, by_variant in diffs["references"].items():
        head = ["variant"] + [titles[k] for k in DIFF_METRICS]
        lines += [f"### vs {ref}" + (" (untrained)" if ref == FLOOR else ""), "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join([v] + [format_difference(d[k]) for k in DIFF_METRICS]) + " |"
                  for v, d in by_variant.items()]
        lines.append("")
    lines += _method_notes(diffs)
    lines += ["## The strategies' claims", ""]
    lines += [_strategy_line(s, titles) for s in diffs["strategies"]]
    return lines + [""]


def _method_notes(diffs: dict) -> list[str]:
    """A line per interval method other than the hull of both, with how many differences use it."""
    records = [d for by_variant in diffs["references"].values() for ds in by_variant.values() for d in ds.values()]
    records += [d for s in diffs["strategies"] for p in s["pairs"] for d in p["differences"].values()]
    used = [d["method"] for d in records if d and "method" in d]
    methods = Counter(m for m in used if not m.startswith("hull"))
    if not methods:
        return []
    return ["Intervals by another method than the hull of both:", ""] + \
        [f"- {method}: {n} of {len(used)} differences" for method, n in methods.items()] + [""]


def _strategy_line(strategy: dict, titles: dict[str, str]) -> str:
    if not strategy["pairs"]:
        return f"- **{strategy['strategy']}**: no two variants of the table differ in this switch alone."
    parts = []
    for pair in strategy["pairs"]:
        claims = [f"{claim}: " + ", ".join(f"{titles[k]} {verdict(pair['differences'][k], sign)}" for k in keys)
                  for claim, sign, keys in CLAIMS]
        parts.append(f"{pair['variant']} vs {pair['reference']}: " + "; ".join(claims))
    return f"- **{strategy['strategy']}**: " + ". ".join(parts) + "."
