"""The ablation table: mean ± std over seeds per variant, best values bolded, the chance row, the chart, and
measures recorded as not computable (n/c with the reason)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from sslfer.evaluate import probe
from sslfer.evaluate.ablation import write_ablation

VARIANTS = {"simclr": {"time_aug": False, "hard_neg": False, "face_swap": False, "mask_fn": "off"},
            "all": {"time_aug": True, "hard_neg": True, "face_swap": True, "mask_fn": "top1"}}


def _results(tmp_path, run: str, acc: float, leak: float) -> dict[str, str]:
    """Result files of one run in the shapes the evaluation writes (only the fields the table reads)."""
    expression = {"accuracy": acc, "macro_f1": acc - 0.01}
    files = {
        "affectnet": {"expression": expression, "valence": {"ccc": 0.3, "rmse": 0.4}, "arousal": {"ccc": 0.2, "rmse": 0.3},
                      "sizes": {"test_per_class": [25] * 8}},
        "fer2013": {"expression": expression, "sizes": {"test_per_class": [10, 10, 20, 10, 10, 10, 10]}},
        "lfw": {"verification": {"accuracy_mean": 0.8}, "identification": {"linear": {"accuracy": 0.6}, "chance": 0.025}},
        "identity_leak": {"accuracy": leak, "chance_majority": 1 / 24},
    }
    paths = {}
    for name, content in files.items():
        path = tmp_path / f"{run.replace('/', '_')}_{name}.json"
        path.write_text(json.dumps(content))
        paths[name] = str(path)
    return paths


def test_ablation_table_means_bold_and_chance(tmp_path):
    runs = {"simclr": [_results(tmp_path, "simclr", 0.30, 0.7), _results(tmp_path, "simclr/seed=1", 0.40, 0.5)],
            "all": [_results(tmp_path, "all", 0.50, 0.4), _results(tmp_path, "all/seed=1", 0.50, 0.4)],
            "random": [_results(tmp_path, "random", 0.60, 0.3), _results(tmp_path, "random/seed=1", 0.60, 0.3)]}
    out = {k: tmp_path / f"ablation.{k}" for k in ("md", "json", "png")}
    rows = write_ablation(runs, VARIANTS, [0, 1], out["md"], out["json"], out["png"])
    by = {r["variant"]: r for r in rows}
    assert by["simclr"]["affectnet_acc"] == pytest.approx({"mean": 0.35, "std": 0.05, "n": 2})
    assert by["random"]["switches"] == {"untrained": True}
    md = out["md"].read_text().splitlines()
    row = {line.split(" | ")[0].strip("| "): line for line in md if line.startswith("| ")}
    assert "| **0.500 ± 0.000** |" in row["all"]            # best trained variant; the untrained floor is not bolded
    assert "0.350 ± 0.050" in row["simclr"] and "**" not in row["random"]
    chance = [c.strip() for c in row["*chance*"].strip("|").split("|")]
    assert chance[6] == "0.125" and chance[11] == "0.250"   # AffectNet 25/200, FER2013 20/80 (majority class)
    assert chance[5] == "" and chance[-1] == f"{1 / 24:.3f}"   # no chance level for F1
    saved = json.loads(out["json"].read_text())
    assert saved["seeds"] == [0, 1] and saved["chance"]["lfw_verification"] == 0.5
    assert cv2.imread(str(out["png"])) is not None


def test_ablation_with_a_not_computable_identity_leak(tmp_path):
    """A corpus with one video per person: the identity leak of every run is recorded as not computable."""
    rng = np.random.default_rng(0)
    ident = np.repeat(["id00000", "id00001", "id00002"], 8)
    leak = probe.measure(probe.identity_leak, rng.standard_normal((24, 4)), ident, np.char.add(ident, "/v/00000"),
                         seed=0)
    assert leak["computable"] is False

    def results(run: str, acc: float) -> dict[str, str]:
        paths = _results(tmp_path, run, acc, 0.0)
        with open(paths["identity_leak"], "w") as f:
            json.dump({"dataset": "pretraining corpus", "run": run, "seed": 0, **leak}, f)
        return paths

    runs = {"all": [results("all", 0.5), results("all/seed=1", 0.4)], "random": [results("random", 0.3)]}
    out = {k: tmp_path / f"ablation.{k}" for k in ("md", "json", "png")}
    rows = write_ablation(runs, VARIANTS, [0, 1], out["md"], out["json"], out["png"])
    reason = leak["reason"]
    assert all(r["identity_leak"] == {"computable": False, "reason": reason} for r in rows)
    assert rows[0]["affectnet_acc"] == pytest.approx({"mean": 0.45, "std": 0.05, "n": 2})  # the rest completes
    md = out["md"].read_text()
    row = {line.split(" | ")[0].strip("| "): line for line in md.splitlines() if line.startswith("| ")}
    assert row["all"].rstrip(" |").endswith("n/c [1]") and row["random"].rstrip(" |").endswith("n/c [1]")
    assert f"- [1] Identity leak Acc: {reason}" in md and "fewer than two identities" in reason
    assert [c.strip() for c in row["*chance*"].strip("|").split("|")][-1] == ""   # no chance level without the probe
    saved = json.loads(out["json"].read_text())
    assert saved["rows"][0]["identity_leak"] == {"computable": False, "reason": reason}
    assert saved["not_computable"] == [{"footnote": 1, "metric": "identity_leak", "reason": reason}]
    assert "identity_leak" not in saved["chance"]
    assert cv2.imread(str(out["png"])) is not None


def test_ablation_seeds_that_differ_in_computability(tmp_path):
    """A cell averages the seeds that have the value and says how many did not (footnoted)."""
    nc = {"computable": False, "reason": "no test rows"}
    a, b = _results(tmp_path, "all", 0.5, 0.4), _results(tmp_path, "all/seed=1", 0.5, 0.6)
    with open(b["identity_leak"], "w") as f:
        json.dump(nc, f)
    out = {k: tmp_path / f"ablation.{k}" for k in ("md", "json", "png")}
    rows = write_ablation({"all": [a, b]}, VARIANTS, [0, 1], out["md"], out["json"], out["png"])
    assert rows[0]["identity_leak"] == {"mean": 0.4, "std": 0.0, "n": 1, "n_not_computable": 1,
                                        "reasons": ["no test rows"]}
    md = out["md"].read_text()
    assert "0.400 (1/2 seeds; n/c [1])" in md and "- [1] Identity leak Acc: no test rows" in md
    assert cv2.imread(str(out["png"])) is not None
