"""The ablation table: every variant (and the untrained floor) × seeds → ``ablation.md`` + ``.json`` + chart.

A cell is ``mean ± std`` over the seeds that have the value (sample std, ``ddof=1``; the mean alone with one
seed); the JSON keeps every seed's value. The main table bolds nothing: below it, :mod:`.differences` adds
each variant's seed-paired difference to plain SimCLR and to the untrained floor with an interval (seed
t-interval and paired test-set bootstrap), bolded only where the interval excludes 0, and one line per
strategy saying whether its claimed effect (expression up, identity down) is measured or indistinguishable
from noise.

A measure that a result file records as not computable (``{"computable": false, "reason": ...}``, e.g. the
identity leak of a corpus with one video per person) becomes the cell ``{"computable": false, "reason": ...}``
in the JSON, ``n/c`` with a numbered footnote giving the reason in the table, and a bar labelled ``n/c`` (a
panel with the reason where no run has it) in the chart.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from . import differences as diff
from ..files import write_bytes, write_json
from .plots import ablation_chart

log = logging.getLogger(__name__)

#: (key, column title, result file, path inside it, higher is better)
METRICS = [
    ("affectnet_f1", "AffectNet EXPR-F1", "affectnet", ("expression", "macro_f1"), True),
    ("affectnet_acc", "AffectNet EXPR-Acc", "affectnet", ("expression", "accuracy"), True),
    ("valence_ccc", "V-CCC", "affectnet", ("valence", "ccc"), True),
    ("valence_rmse", "V-RMSE", "affectnet", ("valence", "rmse"), False),
    ("arousal_ccc", "A-CCC", "affectnet", ("arousal", "ccc"), True),
    ("arousal_rmse", "A-RMSE", "affectnet", ("arousal", "rmse"), False),
    ("fer2013_acc", "FER2013 Acc", "fer2013", ("expression", "accuracy"), True),
    ("lfw_verification", "LFW verif. Acc", "lfw", ("verification", "accuracy_mean"), None),
    ("lfw_identification", "LFW ident. Acc", "lfw", ("identification", "linear", "accuracy"), None),
    ("identity_leak", "Identity leak Acc", "identity_leak", ("accuracy",), None),
]


def not_computable(d) -> str | None:
    """The reason of a ``{"computable": false, ...}`` record (a result's measure, a cell), else None."""
    if isinstance(d, dict) and d.get("computable") is False:
        return str(d.get("reason") or "not computable")
    return None


def _get(d: dict, path: tuple[str, ...]):
    """The value at ``path`` (None if absent or null, or on the way through a not-computable record)."""
    for k in path:
        if not isinstance(d, dict) or not_computable(d) or d.get(k) is None:
            return None
        d = d[k]
    return None if not_computable(d) else d


def _reason(d: dict, path: tuple[str, ...]) -> str | None:
    """The reason recorded by the first not-computable record along ``path``, else None."""
    for k in path:
        if (why := not_computable(d)) is not None:
            return why
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return not_computable(d)


def _majority_share(sizes: dict | None) -> float | None:
    per_class = (sizes or {}).get("test_per_class")
    return max(per_class) / sum(per_class) if per_class and sum(per_class) else None


def chance_levels(results: dict[str, dict]) -> dict[str, float]:
    """Chance level per accuracy column, from one run's result files (the test sets are the same for every
    run): the majority class's share of the test set; 0.5 for LFW pairs; 1/people for LFW identification."""
    levels = {"affectnet_acc": _majority_share(results["affectnet"].get("sizes")),
              "fer2013_acc": _majority_share(results["fer2013"].get("sizes")),
              "lfw_verification": 0.5 if _get(results["lfw"], ("verification",)) else None,
              "lfw_identification": _get(results["lfw"], ("identification", "chance")),   # uniform over people
              "identity_leak": _get(results["identity_leak"], ("chance_majority",))}
    return {k: float(v) for k, v in levels.items() if v is not None}


def load(runs: dict[str, list[dict[str, str]]]) -> dict[str, list[dict]]:
    """Every run's result files, read: per variant, per seed, by name."""
    return {variant: [{name: json.loads(Path(p).read_text()) for name, p in files.items()} for files in seeds]
            for variant, seeds in runs.items()}


def _summary(vals: list[float | None]) -> dict:
    have = [v for v in vals if v is not None]
    std = float(np.std(have, ddof=1)) if len(have) > 1 else None
    return {"mean": float(np.mean(have)), "std": std, "n": len(have), "values": vals}


def collect(results: dict[str, list[dict]], variants: dict[str, dict]) -> list[dict]:
    """Rows of mean ± std per variant; ``results[variant]`` lists, per seed, the run's result files by name.

    A cell is ``{"mean", "std", "n", "values"}`` over the seeds that have the value (``values``: per seed,
    None where missing; ``n_not_computable`` and ``reasons`` added where other seeds record it as not
    computable), ``{"computable": false, "reason"}`` where every seed records it so, and None where no seed
    has it at all.
    """
    rows = []
    for variant, seeds in results.items():
        row = {"variant": variant, "switches": variants.get(variant, {"untrained": True}), "seeds": len(seeds)}
        for key, _, source, path, _ in METRICS:
            vals = [_get(r[source], path) for r in seeds]
            why = sorted({w for r in seeds if (w := _reason(r[source], path)) is not None})
            if any(v is not None for v in vals):
                row[key] = _summary(vals)
                if why:
                    row[key] |= {"n_not_computable": len(seeds) - row[key]["n"], "reasons": why}
            else:
                row[key] = {"computable": False, "reason": "; ".join(why)} if why else None
        rows.append(row)
    return rows


def _footnotes(rows: list[dict]) -> dict[tuple[str, str], int]:
    """A number per distinct (column key, reason), in column then row order."""
    notes: dict[tuple[str, str], int] = {}
    for key, *_ in METRICS:
        for r in rows:
            cell = r[key]
            for why in ([not_computable(cell)] if not_computable(cell) else (cell or {}).get("reasons", [])):
                notes.setdefault((key, why), len(notes) + 1)
    return notes


def _cell(m: dict | None, key: str = "", notes: dict[tuple[str, str], int] | None = None) -> str:
    notes = notes or {}
    if m is None:
        return "–"
    if (why := not_computable(m)) is not None:
        return f"n/c [{notes[(key, why)]}]" if (key, why) in notes else "n/c"
    text = f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["n"] > 1 else "")
    if m.get("reasons"):
        marks = ",".join(str(notes[(key, w)]) for w in m["reasons"] if (key, w) in notes)
        text += f" ({m['n']}/{m['n'] + m['n_not_computable']} seeds; n/c [{marks}])"
    return text


def _switch_flags(sw: dict) -> list[str]:
    if "untrained" in sw:
        return ["–"] * 4
    return ["✓" if sw["time_aug"] else "", "✓" if sw["hard_neg"] else "", "✓" if sw["face_swap"] else "",
            "" if sw["mask_fn"] == "off" else sw["mask_fn"]]


def markdown(rows: list[dict], seeds: list[int], chance: dict[str, float] | None = None, note: str = "") -> str:
    """The main table as Markdown: mean ± std per cell, nothing bolded, the chance row, n/c footnotes."""
    head = ["variant", "time_aug", "hard_neg", "face_swap", "mask_fn"] + [t for _, t, *_ in METRICS]
    lines = [f"# Ablation (linear probe, frozen encoders; mean ± std over seeds {seeds})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = _footnotes(rows)
    for r in rows:
        cells = [_cell(r[key], key, notes) for key, *_ in METRICS]
        lines.append("| " + " | ".join([r["variant"]] + _switch_flags(r["switches"]) + cells) + " |")
    if chance:
        cells = [f"{chance[key]:.3f}" if key in chance else "" for key, *_ in METRICS]
        lines.append("| " + " | ".join(["*chance*", "", "", "", ""] + cells) + " |")
    lines += ["", "std: sample standard deviation over the seeds. Identity columns (LFW, identity leak): lower "
              "means less identity information in the features, which the paper's components aim for. Nothing "
              "here is bolded: whether a variant differs from another by more than noise is in the paired "
              "differences below.", ""]
    if notes:
        titles = {k: t for k, t, *_ in METRICS}
        lines += ["n/c: not computable on this corpus or evaluation set:", ""]
        lines += [f"- [{n}] {titles[key]}: {why}" for (key, why), n in notes.items()]
        lines += [""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def write_ablation(runs: dict[str, list[dict[str, str]]], variants: dict[str, dict], seeds: list[int],
                   out_md: str, out_json: str, out_png: str, corpus: str | None = None,
                   replicates: int = diff.REPLICATES) -> list[dict]:
    """Collect, then write the table with its paired differences, its JSON and its chart (``runs[variant]``
    lists per seed, in the order of ``seeds``, the run's result files by name; ``corpus``: the pretraining
    corpus, named in the table's title and the JSON; ``replicates``: bootstrap resamples)."""
    results = load(runs)
    rows = collect(results, variants)
    diffs = diff.differences(results, variants, seeds, replicates)
    first = next((files for seeds_ in results.values() for files in seeds_), None)
    chance = chance_levels(first) if first else {}
    titles = {k: t for k, t, *_ in METRICS}
    table = markdown(rows, seeds, chance) + "\n" + "\n".join(diff.markdown(diffs, titles))
    if corpus is not None:
        title, _, rest = table.partition("\n")
        table = f"{title[:-1]}; pretraining corpus {corpus})\n{rest}" if title.endswith(")") else table
    write_bytes(out_md, table.encode())
    metrics = [{"key": k, "title": t, "higher_is_better": h} for k, t, _, _, h in METRICS]
    not_comp = [{"footnote": n, "metric": key, "reason": why} for (key, why), n in _footnotes(rows).items()]
    write_json({"corpus": corpus, "seeds": seeds, "chance": chance, "metrics": metrics, "rows": rows,
                "not_computable": not_comp, "differences": diffs}, out_json)
    ablation_chart(rows, [("affectnet_f1", "AffectNet EXPR-F1"), ("fer2013_acc", "FER2013 Acc"),
                          ("valence_ccc", "V-CCC"), ("identity_leak", "Identity leak Acc")], out_png,
                   chance)
    log.info("ablation: %d variants × %d seeds", len(rows), len(seeds))
    return rows
