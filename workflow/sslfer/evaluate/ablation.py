"""The ablation table: every variant (and the untrained floor) × seeds → ``ablation.md`` + ``.json`` + chart."""

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


def _get(d: dict, path: tuple[str, ...]):
    for k in path:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _majority_share(sizes: dict | None) -> float | None:
    per_class = (sizes or {}).get("test_per_class")
    return max(per_class) / sum(per_class) if per_class and sum(per_class) else None


def chance_levels(results: dict[str, dict]) -> dict[str, float]:
    """Chance level per accuracy column, from one run's result files (the test sets are the same for every
    run): the majority class's share of the test set; 0.5 for LFW pairs; 1/people for LFW identification."""
    levels = {"affectnet_acc": _majority_share(results["affectnet"].get("sizes")),
              "fer2013_acc": _majority_share(results["fer2013"].get("sizes")),
              "lfw_verification": 0.5 if results["lfw"].get("verification") else None,
              "lfw_identification": _get(results["lfw"], ("identification", "chance")),   # uniform over people
              "identity_leak": results["identity_leak"].get("chance_majority")}
    return {k: float(v) for k, v in levels.items() if v is not None}


def collect(runs: dict[str, list[dict[str, str]]], variants: dict[str, dict]) -> list[dict]:
    """Rows of mean ± std per variant; ``runs[variant]`` lists, per seed, result file paths by name."""
    rows = []
    for variant, seeds in runs.items():
        results = [{name: json.loads(Path(p).read_text()) for name, p in files.items()} for files in seeds]
        row = {"variant": variant, "switches": variants.get(variant, {"untrained": True}), "seeds": len(results)}
        for key, _, source, path, _ in METRICS:
            vals = [v for r in results if (v := _get(r[source], path)) is not None]
            row[key] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)} if vals else None
        rows.append(row)
    return rows


def _cell(m: dict | None) -> str:
    if m is None:
        return "–"
    return f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m["n"] > 1 else "")


def markdown(rows: list[dict], seeds: list[int], chance: dict[str, float] | None = None, note: str = "") -> str:
    """The table as Markdown, best value per column in bold (where higher or lower is better)."""
    head = ["variant", "time_aug", "hard_neg", "face_swap", "mask_fn"] + [t for _, t, *_ in METRICS]
    lines = [f"# Ablation (linear probe, frozen encoders; mean ± std over seeds {seeds})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {}
    for key, _, _, _, higher in METRICS:
        vals = [r[key]["mean"] for r in rows if r[key] is not None and "untrained" not in r["switches"]]
        if vals and higher is not None:
            best[key] = max(vals) if higher else min(vals)
    for r in rows:
        sw = r["switches"]
        flags = ["–"] * 4 if "untrained" in sw else \
            ["✓" if sw["time_aug"] else "", "✓" if sw["hard_neg"] else "", "✓" if sw["face_swap"] else "",
             "" if sw["mask_fn"] == "off" else sw["mask_fn"]]
        cells = []
        for key, *_ in METRICS:
            c = _cell(r[key])
            bold = r[key] is not None and "untrained" not in sw and best.get(key) == r[key]["mean"]
            cells.append(f"**{c}**" if bold else c)
        lines.append("| " + " | ".join([r["variant"]] + flags + cells) + " |")
    if chance:
        cells = [f"{chance[key]:.3f}" if key in chance else "" for key, *_ in METRICS]
        lines.append("| " + " | ".join(["*chance*", "", "", "", ""] + cells) + " |")
    lines += ["", "Identity columns (LFW, identity leak): lower means less identity information in the features, "
              "which the paper's components aim for; they are not bolded.", ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def write_ablation(runs: dict[str, list[dict[str, str]]], variants: dict[str, dict], seeds: list[int],
                   out_md: str, out_json: str, out_png: str) -> list[dict]:
    """Collect, then write the table, its JSON and its chart."""
    rows = collect(runs, variants)
    first = next((files for seeds_ in runs.values() for files in seeds_), None)
    chance = chance_levels({name: json.loads(Path(p).read_text()) for name, p in first.items()}) if first else {}
    Path(out_md).write_text(markdown(rows, seeds, chance))
    metrics = [{"key": k, "title": t, "higher_is_better": h} for k, t, _, _, h in METRICS]
    write_json({"seeds": seeds, "chance": chance, "metrics": metrics, "rows": rows}, out_json)
    ablation_chart(rows, [("affectnet_f1", "AffectNet EXPR-F1"), ("fer2013_acc", "FER2013 Acc"),
                          ("valence_ccc", "V-CCC"), ("identity_leak", "Identity leak Acc")], out_png,
                   chance)
    log.info("ablation: %d variants × %d seeds", len(rows), len(seeds))
    return rows
