"""The ablation table: mean ± std over seeds per variant, best values bolded, the chance row, the chart."""

from __future__ import annotations

import json

import cv2
import pytest

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
