"""The ablation table: mean ± std over seeds per variant (nothing bolded), the chance row, the chart, measures
recorded as not computable (n/c with the reason); the interval arithmetic on hand values; the seed-paired
differences with their intervals (bold only where distinguishable) and one verdict line per strategy."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sslfer.evaluate import probe
from sslfer.evaluate.ablation import write_ablation
from sslfer.evaluate.differences import PairedBootstrap, paired_difference, strategy_pairs, verdict
from sslfer.evaluate.intervals import (excludes_zero, hull, percentile_interval, replicate_metric, resample_weights,
                                       t_interval, unit_counts)
from sslfer.evaluate.metrics import classification_report

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


def _main_rows(md: str) -> dict[str, str]:
    """The main table's lines by variant (the paired-difference tables below it left out)."""
    main = md.partition("## Paired differences")[0]
    return {line.split(" | ")[0].strip("| "): line for line in main.splitlines() if line.startswith("| ")}


def test_ablation_table_means_and_chance(tmp_path):
    runs = {"simclr": [_results(tmp_path, "simclr", 0.30, 0.7), _results(tmp_path, "simclr/seed=1", 0.40, 0.5)],
            "all": [_results(tmp_path, "all", 0.50, 0.4), _results(tmp_path, "all/seed=1", 0.50, 0.4)],
            "random": [_results(tmp_path, "random", 0.60, 0.3), _results(tmp_path, "random/seed=1", 0.60, 0.3)]}
    out = {k: tmp_path / f"ablation.{k}" for k in ("md", "json", "png")}
    rows = write_ablation(runs, VARIANTS, [0, 1], out["md"], out["json"], out["png"])
    by = {r["variant"]: r for r in rows}
    # sample std (ddof=1) of 0.30 and 0.40: sqrt((0.05² + 0.05²) / 1) = 0.0707
    cell = by["simclr"]["affectnet_acc"]
    assert cell["values"] == [0.3, 0.4] and cell["n"] == 2
    assert (cell["mean"], cell["std"]) == pytest.approx((0.35, 0.0707107))
    assert by["random"]["switches"] == {"untrained": True}
    md = out["md"].read_text()
    row = _main_rows(md)
    assert "| 0.500 ± 0.000 |" in row["all"] and "0.350 ± 0.071" in row["simclr"]
    assert "**" not in md.partition("## Paired differences")[0]      # the main table bolds nothing
    chance = [c.strip() for c in row["*chance*"].strip("|").split("|")]
    assert chance[6] == "0.125" and chance[11] == "0.250"   # AffectNet 25/200, FER2013 20/80 (majority class)
    assert chance[5] == "" and chance[-1] == f"{1 / 24:.3f}"   # no chance level for F1
    saved = json.loads(out["json"].read_text())
    assert saved["seeds"] == [0, 1] and saved["chance"]["lfw_verification"] == 0.5
    # no per-item predictions in these results: the differences rest on the two seeds alone
    d = saved["differences"]["references"]["simclr"]["all"]["affectnet_acc"]
    assert [s["difference"] for s in d["per_seed"]] == pytest.approx([0.2, 0.1])
    assert d["bootstrap_interval"] is None and d["interval"] == d["seed_interval"]
    assert d["method"] == "seed t-interval only (no per-item test predictions)"
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
    # the rest completes; sample std of 0.5 and 0.4 is 0.0707
    cell = rows[0]["affectnet_acc"]
    assert cell["values"] == [0.5, 0.4] and (cell["mean"], cell["std"]) == pytest.approx((0.45, 0.0707107))
    md = out["md"].read_text()
    row = _main_rows(md)
    assert row["all"].rstrip(" |").endswith("n/c [1]") and row["random"].rstrip(" |").endswith("n/c [1]")
    assert f"- [1] Identity leak Acc: {reason}" in md and "fewer than two identities" in reason
    assert [c.strip() for c in row["*chance*"].strip("|").split("|")][-1] == ""   # no chance level without the probe
    saved = json.loads(out["json"].read_text())
    assert saved["rows"][0]["identity_leak"] == {"computable": False, "reason": reason}
    assert saved["not_computable"] == [{"footnote": 1, "metric": "identity_leak", "reason": reason}]
    assert "identity_leak" not in saved["chance"]
    assert saved["differences"]["references"]["random"]["all"]["identity_leak"] == {"computable": False}
    assert "| all | " in md.partition("### vs random")[2] and " n/c |" in md.partition("### vs random")[2]
    assert cv2.imread(str(out["png"])) is not None


def test_ablation_seeds_that_differ_in_computability(tmp_path):
    """A cell averages the seeds that have the value and says how many did not (footnoted)."""
    nc = {"computable": False, "reason": "no test rows"}
    a, b = _results(tmp_path, "all", 0.5, 0.4), _results(tmp_path, "all/seed=1", 0.5, 0.6)
    with open(b["identity_leak"], "w") as f:
        json.dump(nc, f)
    out = {k: tmp_path / f"ablation.{k}" for k in ("md", "json", "png")}
    rows = write_ablation({"all": [a, b]}, VARIANTS, [0, 1], out["md"], out["json"], out["png"])
    assert rows[0]["identity_leak"] == {"mean": 0.4, "std": None, "n": 1, "values": [0.4, None],
                                        "n_not_computable": 1, "reasons": ["no test rows"]}
    md = out["md"].read_text()
    assert "0.400 (1/2 seeds; n/c [1])" in md and "- [1] Identity leak Acc: no test rows" in md
    assert cv2.imread(str(out["png"])) is not None


# --- the interval arithmetic on hand values -------------------------------------------------------------------

def test_t_interval_hand_values():
    # d = 0.02, 0.04, 0.06: mean 0.04, sd (ddof=1) = sqrt((0.02² + 0 + 0.02²) / 2) = 0.02, se = 0.02/√3 = 0.011547;
    # t(0.975, df=2) = 4.302653 (tables), half-width 4.302653 · 0.011547 = 0.049683 → [-0.009683, +0.089683]
    assert t_interval([0.02, 0.04, 0.06]) == pytest.approx((-0.009683, 0.089683), abs=1e-6)
    # d = 0.01, 0.03: mean 0.02, sd = 0.014142, se = 0.01; t(0.975, df=1) = 12.706205 → 0.02 ± 0.127062
    assert t_interval([0.01, 0.03]) == pytest.approx((-0.107062, 0.147062), abs=1e-6)
    # 90 %: t(0.95, df=2) = 2.919986, half-width 2.919986 · 0.011547 = 0.033717
    assert t_interval([0.02, 0.04, 0.06], level=0.90) == pytest.approx((0.006283, 0.073717), abs=1e-6)
    assert t_interval([0.05]) is None and t_interval([]) is None     # one seed: no seed interval
    assert t_interval([0.1, 0.1, 0.1]) == pytest.approx((0.1, 0.1))  # no spread: a point


def test_hull_percentiles_and_zero():
    assert hull((0.01, 0.05), (-0.01, 0.03)) == (-0.01, 0.05)
    assert hull(None, (0.01, 0.02)) == (0.01, 0.02) and hull(None, None) is None
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))   # 0..100: the 2.5th, 97.5th
    assert percentile_interval([np.nan, np.nan]) is None
    assert excludes_zero((0.01, 0.2)) and excludes_zero((-0.2, -0.01))
    assert not excludes_zero((-0.01, 0.2)) and not excludes_zero((0.0, 0.3)) and not excludes_zero(None)


def test_replicate_metrics_hand_values():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
    counts = unit_counts(np.arange(4), y_true, y_pred, 4, n_classes=2)
    w = np.array([[1, 1, 1, 1],     # the test set itself
                  [2, 0, 0, 2],     # rows 0, 0, 3, 3: every prediction right
                  [0, 2, 1, 1]])    # rows 1, 1, 2, 3: true 0 0 1 1, predicted 1 1 1 1
    assert replicate_metric(w, counts, "accuracy") == pytest.approx([0.75, 1.0, 0.5])
    # F1 = 2·tp / (true + predicted): row 1: class 0 2·1/(2+1) = 2/3, class 1 2·2/(2+3) = 4/5, mean 11/15;
    # row 3: class 0 0/(2+0) = 0, class 1 2·2/(2+4) = 2/3, mean 1/3
    assert replicate_metric(w, counts, "macro_f1") == pytest.approx([11 / 15, 1.0, 1 / 3])
    # a class in neither the true nor the predicted labels of a resample leaves the mean (rows 2, 3 only)
    assert replicate_metric(np.array([0, 0, 1, 1]), counts, "macro_f1") == pytest.approx([1.0])
    # groups: rows 0-2 are unit 0, row 3 unit 1; drawing unit 1 twice scores row 3 alone
    grouped = unit_counts(np.array([0, 0, 0, 1]), y_true, y_pred, 2)
    assert replicate_metric(np.array([[0, 2], [1, 1]]), grouped, "accuracy") == pytest.approx([1.0, 0.75])


def test_replicate_metrics_equal_the_metrics_of_the_resampled_test_set():
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 5, 60), rng.integers(0, 5, 60)
    w = resample_weights(60, 20, rng)
    assert (w.sum(axis=1) == 60).all()
    counts = unit_counts(np.arange(60), y_true, y_pred, 60, n_classes=5)
    for weights, acc, f1 in zip(w, replicate_metric(w, counts, "accuracy"), replicate_metric(w, counts, "macro_f1")):
        rows = np.repeat(np.arange(60), weights)
        report = classification_report(y_true[rows], y_pred[rows], 5)
        assert (acc, f1) == pytest.approx((report["accuracy"], report["macro_f1"]))


def _leak(y_true: list[int], y_pred: list[int], groups: list[int] | None = None) -> dict:
    """An identity-leak result with its test predictions (rows in order)."""
    pred = {"rows": list(range(len(y_true))), "y_true": y_true, "y_pred": y_pred}
    acc = float(np.mean(np.array(y_true) == np.array(y_pred)))
    return {"identity_leak": {"computable": True, "accuracy": acc,
                              "test_predictions": pred | ({"groups": groups} if groups else {})}}


def test_paired_bootstrap_hand_values():
    # 10 test items; the variant and the reference agree on all but item 4, where only the variant is right.
    # Paired resamples: the difference is X/10, X ~ Binomial(10, 0.1) the draws of item 4:
    # P(X=0) = 0.9^10 = 0.349, P(X<=2) = 0.930, P(X<=3) = 0.987 → 2.5th percentile 0, 97.5th 3 → [0.0, 0.3]
    y = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    v, r = _leak(y, y), _leak(y, y[:4] + [0] + y[5:])
    boot = PairedBootstrap([v["identity_leak"]["test_predictions"], r["identity_leak"]["test_predictions"]], 1000,
                           np.random.default_rng(0))
    d = paired_difference([v], [r], "identity_leak", [0], boot)
    assert d["mean"] == pytest.approx(0.1) and d["seed_interval"] is None
    assert d["bootstrap_interval"] == pytest.approx((0.0, 0.3)) and d["interval"] == d["bootstrap_interval"]
    assert d["method"].startswith("test-set bootstrap only (one seed") and d["distinguishable"] is False
    # the same 10 frames as 5 tracks of 2, item 4 and 5 (track 2) wrong in the reference: resampling tracks,
    # the difference is 2X/10 = X/5, X ~ Binomial(5, 0.2): P(X<=2) = 0.942, P(X<=3) = 0.993 → [0.0, 0.6]
    tracks = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    v, r = _leak(y, y, tracks), _leak(y, y[:4] + [0, 1] + y[6:], tracks)
    boot = PairedBootstrap([v["identity_leak"]["test_predictions"]], 1000, np.random.default_rng(0))
    d = paired_difference([v], [r], "identity_leak", [0], boot)
    assert d["mean"] == pytest.approx(0.2) and d["bootstrap_interval"] == pytest.approx((0.0, 0.6))


def test_seed_and_bootstrap_intervals_combine_as_their_hull():
    # three seeds, no predictions: the seed t-interval of d = 0.02, 0.04, 0.06 alone (see the hand values above)
    seeds = [{"identity_leak": {"accuracy": a}} for a in (0.52, 0.54, 0.56)]
    ref = [{"identity_leak": {"accuracy": 0.5}}] * 3
    boot = PairedBootstrap([], 10, np.random.default_rng(0))
    d = paired_difference(seeds, ref, "identity_leak", [0, 1, 2], boot)
    assert d["interval"] == pytest.approx((-0.009683, 0.089683), abs=1e-6) and not d["distinguishable"]
    assert [s["seed"] for s in d["per_seed"]] == [0, 1, 2] and d["bootstrap_seeds"] == []
    assert verdict(d, -1) == "indistinguishable from noise ([-0.010, +0.090])"
    # with predictions: the same item-4 difference on every seed → bootstrap [0.0, 0.3] (above); hull
    y = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    v, r = _leak(y, y), _leak(y, y[:4] + [0] + y[5:])
    boot = PairedBootstrap([v["identity_leak"]["test_predictions"]], 1000, np.random.default_rng(0))
    d = paired_difference([v, v, v], [r, r, r], "identity_leak", [0, 1, 2], boot)
    assert d["seed_interval"] == pytest.approx((0.1, 0.1)) and d["bootstrap_interval"] == pytest.approx((0.0, 0.3))
    assert d["interval"] == pytest.approx((0.0, 0.3)) and d["method"].startswith("hull")
    # a difference clear of both noises: measured, and on the wrong side for "identity down"
    d |= {"interval": (0.05, 0.3), "distinguishable": True}
    assert verdict(d, 1) == "measured (+0.100 [+0.050, +0.300])" and verdict(d, -1).startswith("measured opposite")


def test_strategy_pairs_differ_in_one_switch():
    off = {"time_aug": False, "hard_neg": False, "face_swap": False, "mask_fn": "off"}
    variants = {"simclr": off, "time_aug": off | {"time_aug": True},
                "time_aug_hard_neg": off | {"time_aug": True, "hard_neg": True},
                "ta_top1": off | {"time_aug": True, "mask_fn": "top1"},
                "ta_threshold": off | {"time_aug": True, "mask_fn": "threshold"}}
    pairs = strategy_pairs(variants)
    assert pairs["time_aug"] == [("time_aug", "simclr")] and pairs["hard_neg"] == [("time_aug_hard_neg", "time_aug")]
    assert pairs["face_swap"] == []
    assert pairs["mask_fn"] == [("ta_top1", "time_aug"), ("ta_threshold", "time_aug")]   # top1 vs threshold: no


# --- the whole table with made-up predictions -----------------------------------------------------------------

STRATEGY_VARIANTS = {"simclr": VARIANTS["simclr"], "time_aug": VARIANTS["simclr"] | {"time_aug": True},
                     "time_aug_face_swap": VARIANTS["simclr"] | {"time_aug": True, "face_swap": True}}


def _predicted(rng, y: np.ndarray, n_classes: int, p_right: float) -> np.ndarray:
    """Each label kept with probability ``p_right``, else replaced by another class."""
    wrong = rng.random(len(y)) >= p_right
    return np.where(wrong, (y + rng.integers(1, n_classes, len(y))) % n_classes, y)


def _run(tmp_path, run: str, seed: int, p_expr: float, p_leak: float) -> dict[str, str]:
    """A run's result files whose metrics are computed from made-up per-item predictions on fixed test sets."""
    truth = np.random.default_rng(0)
    y_aff, y_fer, y_leak = truth.integers(0, 8, 400), truth.integers(0, 7, 300), np.repeat(np.arange(10), 30)
    rng = np.random.default_rng([seed, sum(map(ord, run))])
    files = _results(tmp_path, run, 0.0, 0.0)
    for name, y, k, p in (("affectnet", y_aff, 8, p_expr), ("fer2013", y_fer, 7, p_expr)):
        pred = _predicted(rng, y, k, p)
        rep = classification_report(y, pred, k)
        res = json.loads(Path(files[name]).read_text())
        res["expression"] = {"computable": True, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"],
                             "test_predictions": {"rows": list(range(len(y))), "y_true": y.tolist(),
                                                  "y_pred": pred.tolist()}}
        Path(files[name]).write_text(json.dumps(res))
    pred = _predicted(rng, y_leak, 10, p_leak)      # 60 held-out tracks of 5 frames
    leak = {"computable": True, "accuracy": float((pred == y_leak).mean()), "chance_majority": 0.1,
            "test_predictions": {"rows": list(range(300)), "groups": (np.arange(300) // 5).tolist(),
                                 "y_true": y_leak.tolist(), "y_pred": pred.tolist()}}
    Path(files["identity_leak"]).write_text(json.dumps(leak))
    return files


def test_ablation_differences_and_strategy_lines(tmp_path):
    # (expression, identity) accuracy: TimeAug changes expression not at all and raises the identity leak;
    # FaceSwap raises expression and lowers the identity leak by far more than the noise of 3 seeds and 300-400
    # test items; the floor is below everything
    effect = {"simclr": (0.40, 0.50), "time_aug": (0.40, 0.65), "time_aug_face_swap": (0.60, 0.30),
              "random": (0.25, 0.20)}
    runs = {v: [_run(tmp_path, f"{v}/seed={s}", s, *p) for s in (0, 1, 2)] for v, p in effect.items()}
    out = {k: tmp_path / f"ablation.{k}" for k in ("md", "json", "png")}
    write_ablation(runs, STRATEGY_VARIANTS, [0, 1, 2], out["md"], out["json"], out["png"], corpus="synth",
                   replicates=300)
    md = out["md"].read_text()
    main, _, paired = md.partition("## Paired differences")
    assert "**" not in main and "mean ± std over seeds [0, 1, 2]; pretraining corpus synth)" in main
    vs_simclr = {line.split(" | ")[0].strip("| "): line for line in paired.partition("### vs random")[0].splitlines()
                 if line.startswith("| ")}
    assert set(vs_simclr) == {"variant", "time_aug", "time_aug_face_swap"}     # the floor has its own table
    f1, _, fer, leak = (c.strip() for c in vs_simclr["time_aug_face_swap"].strip("| ").split(" | ")[1:])
    assert f1.startswith("**+0.") and fer.startswith("**+0.") and leak.startswith("**-0.")
    assert not vs_simclr["time_aug"].split(" | ")[1].startswith("**")          # no expression effect: not bold
    lines = {line.split("**")[1]: line for line in md.splitlines() if line.startswith("- **")}
    assert "time_aug vs simclr: expression up: AffectNet EXPR-F1 indistinguishable from noise ([" in lines["TimeAug"]
    assert "identity down: Identity leak Acc measured opposite (+0.1" in lines["TimeAug"]
    assert ("time_aug_face_swap vs time_aug: expression up: AffectNet EXPR-F1 measured (+0.2" in lines["FaceSwap"]
            and "Identity leak Acc measured (-0.3" in lines["FaceSwap"])
    assert lines["HardNeg"].endswith("no two variants of the table differ in this switch alone.")

    saved = json.loads(out["json"].read_text())["differences"]
    assert saved["method"]["replicates"] == 300 and saved["method"]["level"] == 0.95
    assert list(saved["references"]) == ["simclr", "random"]
    d = saved["references"]["random"]["simclr"]["affectnet_acc"]
    rows = {r["variant"]: r for r in json.loads(out["json"].read_text())["rows"]}
    per_seed = np.subtract(rows["simclr"]["affectnet_acc"]["values"], rows["random"]["affectnet_acc"]["values"])
    assert [s["difference"] for s in d["per_seed"]] == pytest.approx(per_seed)
    assert d["mean"] == pytest.approx(per_seed.mean())
    assert d["seed_interval"] == pytest.approx(t_interval(per_seed)) and d["bootstrap_seeds"] == [0, 1, 2]
    assert d["interval"] == pytest.approx(hull(d["seed_interval"], d["bootstrap_interval"]))
    assert d["bootstrap_interval"][0] < d["mean"] < d["bootstrap_interval"][1] and d["distinguishable"]
    face_swap = next(s for s in saved["strategies"] if s["strategy"] == "FaceSwap")["pairs"]
    assert [(p["variant"], p["reference"]) for p in face_swap] == [("time_aug_face_swap", "time_aug")]
    assert cv2.imread(str(out["png"])) is not None
