"""The ablation table: every variant (and the untrained floor) × seeds → ``ablation.md`` + ``.json`` + chart.

A measure that a result file records as not computable (``{"computable": false, "reason": ...}``, e.g. the
identity leak of a corpus with one video per person) becomes the cell ``{"computable": false, "reason": ...}``
in the JSON, ``n/c`` with a numbered footnote giving the reason in the table, and a bar labelled ``n/c`` (a
panel with the reason where no run has it) in the chart. A cell averages the seeds that have the value.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .linear import write_json
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


def collect(runs: dict[str, list[dict[str, str]]], variants: dict[str, dict]) -> list[dict]:
    """Rows of mean ± std per variant; ``runs[variant]`` lists, per seed, result file paths by name.

    A cell is ``{"mean", "std", "n"}`` over the seeds that have the value (``n_not_computable`` and ``reasons``
    added where other seeds record it as not computable), ``{"computable": false, "reason"}`` where every
    seed records it so, and None where no seed has it at all.
    """
    rows = []
    for variant, seeds in runs.items():
        results = [{name: json.loads(Path(p).read_text()) for name, p in files.items()} for files in seeds]
        row = {"variant": variant, "switches": variants.get(variant, {"untrained": True}), "seeds": len(results)}
        for key, _, source, path, _ in METRICS:
            vals = [v for r in results if (v := _get(r[source], path)) is not None]
            why = sorted({w for r in results if (w := _reason(r[source], path)) is not None})
            if vals:
                row[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}
                if why:
                    row[key] |= {"n_not_computable": len(results) - len(vals), "reasons": why}
            else:
                row[key] = {"computable": False, "reason": "; ".join(why)} if why else None
        rows.append(row)
    return rows


def _has_value(cell: dict | None) -> bool:
    return cell is not None and "mean" in cell


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


def markdown(rows: list[dict], seeds: list[int], chance: dict[str, float] | None = None, note: str = "") -> str:
    """The table as Markdown, best value per column in bold (where higher or lower is better)."""
    head = ["variant", "time_aug", "hard_neg", "face_swap", "mask_fn"] + [t for _, t, *_ in METRICS]
    lines = [f"# Ablation (linear probe, frozen encoders; mean ± std over seeds {seeds})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {}
    notes = _footnotes(rows)
    for key, _, _, _, higher in METRICS:
        vals = [r[key]["mean"] for r in rows if _has_value(r[key]) and "untrained" not in r["switches"]]
        if vals and higher is not None:
            best[key] = max(vals) if higher else min(vals)
    for r in rows:
        sw = r["switches"]
        flags = ["–"] * 4 if "untrained" in sw else \
            ["✓" if sw["time_aug"] else "", "✓" if sw["hard_neg"] else "", "✓" if sw["face_swap"] else "",
             "" if sw["mask_fn"] == "off" else sw["mask_fn"]]
        cells = []
        for key, *_ in METRICS:
            c = _cell(r[key], key, notes)
            bold = _has_value(r[key]) and "untrained" not in sw and best.get(key) == r[key]["mean"]
            cells.append(f"**{c}**" if bold else c)
        lines.append("| " + " | ".join([r["variant"]] + flags + cells) + " |")
    if chance:
        cells = [f"{chance[key]:.3f}" if key in chance else "" for key, *_ in METRICS]
        lines.append("| " + " | ".join(["*chance*", "", "", "", ""] + cells) + " |")
    lines += ["", "Identity columns (LFW, identity leak): lower means less identity information in the features, "
              "which the paper's components aim for; they are not bolded.", ""]
    if notes:
        titles = {k: t for k, t, *_ in METRICS}
        lines += ["n/c: not computable on this corpus or evaluation set:", ""]
        lines += [f"- [{n}] {titles[key]}: {why}" for (key, why), n in notes.items()]
        lines += [""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def write_ablation(runs: dict[str, list[dict[str, str]]], variants: dict[str, dict], seeds: list[int],
                   out_md: str, out_json: str, out_png: str, corpus: str | None = None) -> list[dict]:
    """Collect, then write the table, its JSON and its chart (``corpus``: the pretraining corpus, named in
    the table's title and the JSON)."""
    rows = collect(runs, variants)
    first = next((files for seeds_ in runs.values() for files in seeds_), None)
    chance = chance_levels({name: json.loads(Path(p).read_text()) for name, p in first.items()}) if first else {}
    table = markdown(rows, seeds, chance)
    if corpus is not None:
        title, _, rest = table.partition("\n")
        table = f"{title[:-1]}; pretraining corpus {corpus})\n{rest}" if title.endswith(")") else table
    Path(out_md).write_text(table)
    metrics = [{"key": k, "title": t, "higher_is_better": h} for k, t, _, _, h in METRICS]
    not_comp = [{"footnote": n, "metric": key, "reason": why} for (key, why), n in _footnotes(rows).items()]
    write_json({"corpus": corpus, "seeds": seeds, "chance": chance, "metrics": metrics, "rows": rows, "not_computable": not_comp},
               out_json)
    ablation_chart(rows, [("affectnet_f1", "AffectNet EXPR-F1"), ("fer2013_acc", "FER2013 Acc"),
                          ("valence_ccc", "V-CCC"), ("identity_leak", "Identity leak Acc")], out_png,
                   chance)
    log.info("ablation: %d variants × %d seeds", len(rows), len(seeds))
    return rows
