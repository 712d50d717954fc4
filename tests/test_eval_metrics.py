"""Metrics against hand-computed values; probes on constructed features with known structure."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sslfer.evaluate.metrics import ccc, classification_report, pearson, rmse
from sslfer.evaluate.probe import (
    best_threshold,
    holdout_mask,
    identification,
    identity_leak,
    linear_classifier,
    linear_regressor,
    pair_verification,
)


def assert_plain_json(obj) -> None:
    """Only Python bool/int/float/str/None leaves (no numpy scalars), and json.dumps works."""
    def walk(o):
        if isinstance(o, dict):
            assert all(type(k) is str for k in o)
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
        else:
            assert o is None or type(o) in (bool, int, float, str), f"{type(o)}: {o!r}"

    walk(obj)
    json.dumps(obj)


def blobs(rng, n_per_class, n_classes, dim, spread):
    """Gaussian blobs: class centres 4 apart on the axes, unit noise times ``spread``."""
    y = np.repeat(np.arange(n_classes), n_per_class)
    centres = 4.0 * np.eye(n_classes, dim)
    x = centres[y] + spread * rng.standard_normal((len(y), dim))
    return x.astype(np.float32), y


# --- metrics: hand-computed values ------------------------------------------------------------------------

def test_ccc_rmse_pearson_hand_values():
    # y=[1,2,3], p=[2,3,4]: means 2 and 3, var y = var p = cov = 2/3 (population)
    # CCC = 2·(2/3) / (2/3 + 2/3 + (2−3)²) = (4/3)/(7/3) = 4/7; Pearson = 1; RMSE = sqrt(mean 1²) = 1
    assert ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7)
    assert pearson([1, 2, 3], [2, 3, 4]) == pytest.approx(1.0)
    assert rmse([1, 2, 3], [2, 3, 4]) == pytest.approx(1.0)
    # y=[1,2,3,4], p=[2,2,4,4]: means 2.5 and 3; dy=[−1.5,−.5,.5,1.5], dp=[−1,−1,1,1]
    # cov = (1.5+.5+.5+1.5)/4 = 1; var y = (2.25+.25+.25+2.25)/4 = 1.25; var p = 1; (2.5−3)² = .25
    # CCC = 2·1/(1.25+1+.25) = 0.8; Pearson = 1/sqrt(1.25) = 0.894427; RMSE = sqrt((1+0+1+0)/4) = 0.707107
    assert ccc([1, 2, 3, 4], [2, 2, 4, 4]) == pytest.approx(0.8)
    assert pearson([1, 2, 3, 4], [2, 2, 4, 4]) == pytest.approx(0.894427, abs=1e-6)
    assert rmse([1, 2, 3, 4], [2, 2, 4, 4]) == pytest.approx(0.707107, abs=1e-6)
    # y=[1,2,3], p=[3,2,1]: equal means, cov = −2/3, variances 2/3 → CCC = −1; RMSE = sqrt((4+0+4)/3) = 1.632993
    assert ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rmse([1, 2, 3], [3, 2, 1]) == pytest.approx(1.632993, abs=1e-6)
    # constant inputs: correlation undefined
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError):
        ccc([1, 2], [1, 2, 3])


def test_ccc_properties():
    rng = np.random.default_rng(0)
    y = rng.uniform(-1, 1, 500)
    assert ccc(y, y) == pytest.approx(1.0)
    biased = y + 0.5 + 0.1 * rng.standard_normal(500)
    assert ccc(y, biased) < pearson(y, biased) - 0.2  # bias costs CCC, not Pearson
    scaled = 0.5 * y  # perfect correlation, wrong scale
    assert pearson(y, scaled) == pytest.approx(1.0)
    assert ccc(y, scaled) < 0.9


def test_classification_report_hand_values():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 2, 2])
    # class 0: TP 2, FP 0, FN 1 → P 1, R 2/3, F1 = 0.8
    # class 1: TP 1 (row 3), FP 1 (row 2), FN 1 (row 4) → P 1/2, R 1/2, F1 = 0.5
    # class 2: TP 1 (row 5), FP 1 (row 4), FN 0 → P 1/2, R 1, F1 = 2/3
    # macro-F1 = (0.8 + 0.5 + 2/3)/3 = 59/90; accuracy = rows 0,1,3,5 = 4/6
    rep = classification_report(y, p, 3)
    assert rep["accuracy"] == pytest.approx(4 / 6)
    assert rep["per_class_f1"] == pytest.approx([0.8, 0.5, 2 / 3])
    assert rep["macro_f1"] == pytest.approx(59 / 90)
    assert rep["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert rep["n"] == 6
    # a 4th class absent from both: per-class None, left out of the mean (sklearn's default label set)
    rep4 = classification_report(y, p, 4)
    assert rep4["per_class_f1"][3] is None
    assert rep4["macro_f1"] == pytest.approx(59 / 90)
    assert rep4["confusion"][3] == [0, 0, 0, 0]
    assert rep4["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    # a class predicted but never true counts with F1 0:
    # y=[0,0,1,1], p=[0,2,1,1]: class 0 P 1 R 1/2 → 2/3; class 1 → 1; class 2 (FP only) → 0; macro = 5/9
    rep = classification_report(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1]), 3)
    assert rep["per_class_f1"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert rep["macro_f1"] == pytest.approx(5 / 9)
    assert_plain_json(rep)
    with pytest.raises(ValueError):
        classification_report(np.array([0, 3]), np.array([0, 1]), 3)


# --- linear classifier -------------------------------------------------------------------------------------

def test_linear_classifier_separable_and_shuffled():
    rng = np.random.default_rng(1)
    x, y = blobs(rng, 100, 4, 16, 1.0)
    xt, yt = blobs(rng, 50, 4, 16, 1.0)
    res = linear_classifier(x, y, xt, yt, seed=0, n_classes=4)
    assert res["accuracy"] >= 0.95 and res["macro_f1"] >= 0.95
    assert res["n_train"] == 400 and res["n_test"] == 200 and res["n_select"] == 80
    assert len(res["selection"]) == 5 and res["chosen_C"] in [s["C"] for s in res["selection"]]
    assert_plain_json(res)
    assert linear_classifier(x, y, xt, yt, seed=0, n_classes=4) == res  # deterministic

    # labels independent of the features (both sides shuffled): chance level
    shuffled = linear_classifier(x, rng.permutation(y), xt, rng.permutation(yt), seed=0, n_classes=4)
    assert abs(shuffled["accuracy"] - 0.25) < 0.1


def test_linear_classifier_selection_never_sees_test():
    rng = np.random.default_rng(2)
    x, y = blobs(rng, 60, 3, 8, 2.0)
    xt, yt = blobs(rng, 40, 3, 8, 2.0)
    right = linear_classifier(x, y, xt, yt, seed=3, n_classes=3)
    wrong = linear_classifier(x, y, xt, (yt + 1) % 3, seed=3, n_classes=3)
    noise = linear_classifier(x, y, rng.standard_normal(xt.shape), yt, seed=3, n_classes=3)
    assert right["chosen_C"] == wrong["chosen_C"] == noise["chosen_C"]
    assert right["selection"] == wrong["selection"] == noise["selection"]
    assert wrong["accuracy"] < 0.3 < right["accuracy"]


def test_linear_classifier_balanced_helps_minority():
    rng = np.random.default_rng(4)
    x0, _ = blobs(rng, 400, 2, 4, 2.5)
    y0 = np.repeat([0, 1], 400)
    keep = np.concatenate([np.arange(400), 400 + np.arange(40)])  # 10:1 imbalance in training
    xt, yt = blobs(rng, 200, 2, 4, 2.5)
    plain = linear_classifier(x0[keep], y0[keep], xt, yt, seed=0, n_classes=2)
    balanced = linear_classifier(x0[keep], y0[keep], xt, yt, seed=0, n_classes=2, class_weight="balanced")
    recall = [r["confusion"][1][1] / sum(r["confusion"][1]) for r in (plain, balanced)]
    assert balanced["class_weight"] == "balanced"
    assert recall[1] > recall[0]


def test_holdout_mask_strata_and_groups():
    labels = np.repeat([0, 1, 2], [10, 5, 1])
    held = holdout_mask(labels, 0.2, np.random.default_rng(0))
    assert [int(held[labels == c].sum()) for c in range(3)] == [2, 1, 0]  # round(.2·10), max(1, round(1)), 1 row stays
    groups = np.repeat(np.arange(8), 2)  # label 0: groups 0..4, label 1: 5..7 (group 7 has rows of labels 1 and 2)
    held = holdout_mask(labels, 0.4, np.random.default_rng(0), groups)
    for g in np.unique(groups[labels < 2]):
        rows = (groups == g) & (labels < 2)
        assert held[rows].all() or not held[rows].any()


# --- linear regressor ----------------------------------------------------------------------------------------

def test_linear_regressor_learns_and_clips():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((16, 2)) / 8
    x = rng.standard_normal((400, 16))
    v = np.clip(x @ w + 0.05 * rng.standard_normal((400, 2)), -1, 1)
    xt = rng.standard_normal((200, 16))
    vt = np.clip(xt @ w, -1, 1)
    res = linear_regressor(x, v, xt, vt, seed=0)
    assert res["valence"]["ccc"] > 0.9 and res["arousal"]["ccc"] > 0.9
    assert res["valence"]["rmse"] < 0.1
    assert res["chosen_alpha"] in [s["alpha"] for s in res["selection"]]
    assert_plain_json(res)

    noise = linear_regressor(rng.standard_normal((400, 16)), v, xt, vt, seed=0)
    assert abs(noise["mean_ccc"]) < 0.2

    # test features far outside the training range: unclipped predictions would reach about ±3
    x1 = rng.standard_normal((300, 1))
    far = np.array([[-10.0], [10.0]])
    res = linear_regressor(x1, np.hstack([0.3 * x1, -0.3 * x1]), far, np.array([[-1.0, 1.0], [1.0, -1.0]]), seed=0)
    assert res["valence"]["rmse"] < 0.05 and res["arousal"]["rmse"] < 0.05


# --- pair verification ----------------------------------------------------------------------------------------

def make_pairs(rng, n_pairs, noise):
    """Half same-person pairs (two noisy views of one centre), half different, alternating per fold block."""
    centres = rng.standard_normal((50, 32))
    same = np.tile(np.repeat([True, False], n_pairs // 20), 10)
    a_id = rng.integers(0, 50, n_pairs)
    b_id = np.where(same, a_id, (a_id + rng.integers(1, 50, n_pairs)) % 50)
    fa = centres[a_id] + noise * rng.standard_normal((n_pairs, 32))
    fb = centres[b_id] + noise * rng.standard_normal((n_pairs, 32))
    return fa, fb, same


def test_best_threshold_hand_values():
    # sims 0.1, 0.2 different; 0.8, 0.9 same → cut between 0.2 and 0.8 at the midpoint 0.5, accuracy 1
    assert best_threshold(np.array([0.9, 0.1, 0.8, 0.2]), np.array([1, 0, 1, 0])) == (pytest.approx(0.5), 1.0)
    # all "same": the threshold lies below the lowest similarity
    t, acc = best_threshold(np.array([0.3, 0.3, 0.7]), np.array([1, 1, 1]))
    assert t < 0.3 and acc == 1.0


def test_pair_verification_constructed_and_random():
    rng = np.random.default_rng(6)
    fa, fb, same = make_pairs(rng, 600, 0.3)
    res = pair_verification(fa, fb, same, 10)
    assert res["accuracy_mean"] > 0.95 and res["auc"] > 0.98
    assert len(res["fold_accuracies"]) == 10 and res["n_pairs"] == 600
    assert_plain_json(res)

    ra, rb = rng.standard_normal((600, 32)), rng.standard_normal((600, 32))
    rand = pair_verification(ra, rb, same, 10)
    assert abs(rand["accuracy_mean"] - 0.5) < 0.1 and abs(rand["auc"] - 0.5) < 0.1

    # the threshold of a fold is chosen on the other folds: flipping fold 0's labels ruins only fold 0
    flipped = same.copy()
    flipped[:60] = ~flipped[:60]
    res_f = pair_verification(fa, fb, flipped, 10)
    assert res_f["fold_accuracies"][0] < 0.1
    assert min(res_f["fold_accuracies"][1:]) > 0.85


# --- identity probes ------------------------------------------------------------------------------------------

def test_identification_clustered_people():
    rng = np.random.default_rng(7)
    people = np.repeat([f"person_{i:02d}" for i in range(10)], 8)
    centres = 3.0 * rng.standard_normal((10, 24))
    x = centres[np.searchsorted(np.unique(people), people)] + rng.standard_normal((80, 24))
    x = np.vstack([x, rng.standard_normal((1, 24))])
    people = np.append(people, "loner")  # one image: dropped and counted
    res = identification(x, people, seed=0)
    assert res["n_people"] == 10 and res["n_dropped_people"] == 1
    assert res["n_test"] == 20 and res["n_train"] == 60  # round(0.3·8) = 2 per person
    assert res["linear"]["accuracy"] >= 0.9 and res["nn1"]["accuracy"] >= 0.9
    assert res["chance"] == pytest.approx(0.1)
    assert_plain_json(res)


def frames_of_tracks(rng, n_ids, n_tracks, n_frames, id_scale, dim=16):
    """Frame features = identity centre·id_scale + per-track offset + noise; plus ids and track names."""
    ident = np.repeat(np.arange(n_ids), n_tracks * n_frames)
    track = np.repeat(np.arange(n_ids * n_tracks), n_frames)
    x = (id_scale * rng.standard_normal((n_ids, dim))[ident] + 2.0 * rng.standard_normal((n_ids * n_tracks, dim))[track]
         + 0.3 * rng.standard_normal((len(track), dim)))
    return x, np.array([f"id{i:05d}" for i in ident]), np.array([f"id{i:05d}/yt/{t:05d}" for i, t in zip(ident, track)])


def test_identity_leak_splits_by_track():
    rng = np.random.default_rng(8)
    x, ident, track = frames_of_tracks(rng, 10, 5, 10, id_scale=0.0)  # tracks carry no identity information
    x = np.vstack([x, rng.standard_normal((10, 16))])
    ident = np.append(ident, ["id99999"] * 10)
    track = np.append(track, ["id99999/yt/00000"] * 10)  # a one-track identity: skipped
    res = identity_leak(x, ident, track, seed=0)
    assert res["n_identities"] == 10 and res["n_skipped_identities"] == 1
    assert res["n_train_tracks"] + res["n_test_tracks"] == 50  # no track on both sides
    assert res["n_test_tracks"] == 20 and res["n_test"] == 200  # round(0.3·5) = 2 tracks per identity
    assert res["selection_split"] == "groups"
    assert res["chance_uniform"] == pytest.approx(0.1) and res["chance_majority"] == pytest.approx(0.1)
    assert res["accuracy"] < 0.3  # held-out tracks: memorised tracks do not transfer
    assert_plain_json(res)

    # the same frames split by frame instead of by track: track memorisation looks like identity
    keep = ident != "id99999"
    y = np.searchsorted(np.unique(ident[keep]), ident[keep])
    test = holdout_mask(y, 0.3, np.random.default_rng(0))
    by_frame = linear_classifier(x[keep][~test], y[~test], x[keep][test], y[test], seed=0, n_classes=10)
    assert by_frame["accuracy"] > 0.9

    x, ident, track = frames_of_tracks(rng, 10, 5, 10, id_scale=3.0)  # identity shared across tracks
    assert identity_leak(x, ident, track, seed=0)["accuracy"] > 0.8


def test_identity_leak_rejects_shared_track():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="t1"):
        identity_leak(x, np.array(["a", "b", "a", "b"]), np.array(["t1", "t1", "t2", "t3"]), seed=0)


def test_probes_record_their_test_predictions(tmp_path):
    """The expression and identity probes keep each test row's true and predicted class, in test-row order, so
    the ablation can resample the same rows for two encoders."""
    from sslfer.files import write_json

    rng = np.random.default_rng(11)
    x, y = blobs(rng, 20, 3, 6, 1.5)
    test = holdout_mask(y, 0.3, rng)
    res = linear_classifier(x[~test], y[~test], x[test], y[test], seed=0, n_classes=3, predictions=True)
    pred = res["test_predictions"]
    assert pred["y_true"] == y[test].tolist() and len(pred["y_pred"]) == res["n_test"]
    again = classification_report(np.array(pred["y_true"]), np.array(pred["y_pred"]), 3)
    assert (again["accuracy"], again["macro_f1"]) == (res["accuracy"], res["macro_f1"])
    assert "test_predictions" not in linear_classifier(x[~test], y[~test], x[test], y[test], seed=0, n_classes=3)

    x, ident, track = frames_of_tracks(rng, 6, 4, 5, id_scale=3.0)
    leak = identity_leak(x, ident, track, seed=0)
    p = leak["test_predictions"]
    rows = np.array(p["rows"])
    assert len(rows) == leak["n_test"] and (np.diff(rows) > 0).all()          # rows of the input, in order
    assert (np.unique(ident)[p["y_true"]] == ident[rows]).all()
    assert np.mean(np.array(p["y_true"]) == np.array(p["y_pred"])) == pytest.approx(leak["accuracy"])
    groups = np.array(p["groups"])                                            # one group per held-out track
    assert len(np.unique(groups)) == leak["n_test_tracks"]
    assert all(len(np.unique(track[rows][groups == g])) == 1 for g in np.unique(groups))
    assert_plain_json(leak)
    write_json(leak, tmp_path / "leak.json")
    text = (tmp_path / "leak.json").read_text()
    assert json.loads(text) == leak and f'"rows": [{rows[0]}, {rows[1]},' in text    # number lists on one line
