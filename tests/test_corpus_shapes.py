"""Corpora as users have them: measures a corpus or evaluation set cannot support are recorded as not computable
(with the reason), everything else is still computed.

The identity-leak input is the real tiny corpus, preprocessed, with one track per identity (one video per
person, as in many own-video CSV corpora), embedded by an untrained encoder through the project's feature code.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sslfer.evaluate import plots, probe, protocol
from sslfer.files import write_json
from sslfer.evaluate.features import feature_column, write_corpus_features
from sslfer.parquet import write_parquet
from sslfer.train.model import random_encoder

from test_eval_metrics import assert_plain_json, blobs


def _shard(table: pa.Table, root, crops) -> str:
    """A ``frames/shard=00000`` directory holding ``table`` and a link to the crops it indexes."""
    d = root / "frames" / "shard=00000"
    d.mkdir(parents=True)
    pq.write_table(table, d / "frames.parquet")
    (d / "crops.npy").symlink_to(crops)
    return str(d / "frames.parquet")


@pytest.fixture(scope="module")
def corpus_features(processed, tmp_path_factory):
    """Identity-leak features of the tiny corpus (3 identities × 2 tracks) with an untrained encoder: ``all``
    tracks, and ``one_per_person`` (each identity's first track only)."""
    src = processed[0]
    frames = pq.read_table(src / "frames.parquet")
    first = frames.to_pandas().groupby("identity").video_id.min().tolist()
    root = tmp_path_factory.mktemp("corpus_shapes")
    encoder = random_encoder(root / "encoder.pt", "resnet18", seed=0, config={})
    out = {}
    for name, table in (("all", frames), ("one_per_person", frames.filter(pc.is_in(frames.column("video_id"),
                                                                                    pa.array(first))))):
        shard = _shard(table, root / name, src / "crops.npy")
        out[name] = root / name / "corpus.parquet"
        write_corpus_features(str(encoder), [shard], str(out[name]), 8, 36, 32, {"rule": "test", "seed": 0},
                              batch_size=16)
    return out


def test_identity_leak_one_video_per_person_is_recorded_not_raised(corpus_features, tmp_path):
    tab = pq.read_table(corpus_features["one_per_person"]).to_pandas()
    assert tab.identity.nunique() == 3 and tab.groupby("identity").video_id.nunique().eq(1).all()
    res = protocol.identity_leak_result(str(corpus_features["one_per_person"]), "all", seed=0)
    assert res["computable"] is False
    assert res["reason"].startswith("fewer than two identities have two or more tracks (0 of 3 identities, 3 tracks)")
    assert (res["n_identities_total"], res["n_identities_with_two_tracks"], res["n_tracks"]) == (3, 0, 3)
    assert res["run"] == "all" and res["seed"] == 0 and res["frames"] == len(tab) > 0
    assert res["encoder"].endswith("encoder.pt") and len(res["encoder_sha256"]) == 64
    assert "accuracy" not in res
    write_json(res, tmp_path / "identity_leak.json")
    assert json.loads((tmp_path / "identity_leak.json").read_text()) == res
    assert_plain_json(res)

    # the same corpus with both tracks per identity: the probe runs
    full = protocol.identity_leak_result(str(corpus_features["all"]), "all", seed=0)
    assert full["computable"] is True and full["n_identities"] == 3 and full["n_test_tracks"] == 3
    assert 0.0 <= full["accuracy"] <= 1.0 and full["chance_uniform"] == pytest.approx(1 / 3)


def test_probe_identity_leak_reasons():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 4))
    ident = np.repeat(["a", "b", "c"], 4)
    with pytest.raises(probe.NotComputable, match="0 of 3 identities, 3 tracks") as e:
        probe.identity_leak(x, ident, np.char.add(ident, "/v0"), seed=0)          # one track per identity
    assert e.value.counts == {"n_identities_total": 3, "n_identities_with_two_tracks": 0, "n_tracks": 3}
    one = np.repeat(["a"], 12)                                                     # one identity, many tracks
    rec = probe.measure(probe.identity_leak, x, one, np.array([f"a/v{i // 3}" for i in range(12)]), seed=0)
    assert rec["computable"] is False and "(1 of 1 identities, 4 tracks)" in rec["reason"]
    assert_plain_json(rec)
    rec = probe.measure(probe.identity_leak, np.zeros((0, 4)), np.array([], str), np.array([], str), seed=0)
    assert rec["computable"] is False and rec["n_tracks"] == 0                    # no frames at all
    with pytest.raises(ValueError, match="t1") as e:                               # inconsistent input: still an error
        probe.measure(probe.identity_leak, x[:4], np.array(["a", "b", "a", "b"]), np.array(["t1", "t1", "t2", "t3"]),
                      seed=0)
    assert not isinstance(e.value, probe.NotComputable)


def test_identification_too_few_people_and_too_few_images():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 8))
    rec = probe.measure(probe.identification, x, np.array(["ann"] * 5 + ["bob"] * 3 + ["cy"]), seed=0,
                        min_per_person=4)
    assert rec == {"computable": False, "n_people": 1, "n_people_total": 3,
                   "reason": "fewer than two people have 4 or more images (1 of 3 people do)"}
    # two images per person: one test and one training image each, so no person has two training images to
    # choose C on: the linear probe is not computable, 1-NN still is
    centres = 5.0 * rng.standard_normal((6, 8))
    people = np.repeat([f"p{i}" for i in range(6)], 2)
    x = centres[np.repeat(np.arange(6), 2)] + 0.1 * rng.standard_normal((12, 8))
    res = probe.measure(probe.identification, x, people, seed=0, min_per_person=2)
    assert res["computable"] is True and res["n_test"] == 6
    assert res["linear"]["computable"] is False and "selection split" in res["linear"]["reason"]
    assert res["nn1"]["accuracy"] == 1.0
    assert_plain_json(res)


def test_classifier_regressor_and_verification_reasons():
    rng = np.random.default_rng(2)
    x, y = blobs(rng, 10, 3, 6, 1.0)
    with pytest.raises(probe.NotComputable, match="no test rows"):
        probe.linear_classifier(x, y, x[:0], y[:0], seed=0, n_classes=3)
    with pytest.raises(probe.NotComputable, match="fewer than two classes"):
        probe.linear_classifier(x[y == 0], y[y == 0], x, y, seed=0, n_classes=3)
    with pytest.raises(ValueError, match=r"integers in \[0, 3\)") as e:           # a bad label is not a shape issue
        probe.linear_classifier(x, y + 1, x, y, seed=0, n_classes=3)
    assert not isinstance(e.value, probe.NotComputable)
    v = rng.uniform(-1, 1, (len(x), 2))
    with pytest.raises(probe.NotComputable, match="no test rows with targets"):
        probe.linear_regressor(x, v, x[:0], v[:0], seed=0)
    with pytest.raises(probe.NotComputable, match="fewer than 3 rows"):
        probe.linear_regressor(x[:2], v[:2], x, v, seed=0)
    same = np.tile([True, False], 10)
    rec = probe.measure(probe.pair_verification, x[:20], x[10:30], same, folds=np.zeros(20, int))
    assert rec == {"computable": False, "reason": "pair verification needs usable pairs in at least two folds",
                   "n_pairs": 20, "n_folds": 1}
    assert probe.measure(probe.pair_verification, x[:0], x[:0], same[:0])["reason"] == "no usable pairs"


def _lfw_files(tmp_path, people: list[str], fold: list[int]):
    """An LFW-shaped item table, pairs table and feature file (features from small arrays)."""
    rng = np.random.default_rng(3)
    n = len(people)
    items = pd.DataFrame({"item_id": [f"img{i}" for i in range(n)], "role": "people", "identity": people,
                          "crop_index": np.arange(n), "status": "ok", "split": "test", "label": -1})
    x = rng.standard_normal((n, 8)).astype(np.float32)
    pq.write_table(pa.Table.from_pandas(items, preserve_index=False), tmp_path / "items.parquet")
    write_parquet(pa.table({"item_id": items.item_id, "feature": feature_column(x, np.ones(n, bool), 8)}),
                  tmp_path / "features.parquet", {"encoder": "enc.pt", "encoder_sha256": "0" * 64})
    a = np.arange(len(fold)) % n
    b = (a + 1) % n
    pairs = pd.DataFrame({"item_a": items.item_id[a].to_numpy(), "item_b": items.item_id[b].to_numpy(),
                          "same": [people[i] == people[j] for i, j in zip(a, b)], "fold": fold})
    pq.write_table(pa.Table.from_pandas(pairs, preserve_index=False), tmp_path / "pairs.parquet")
    return [str(tmp_path / f) for f in ("items.parquet", "features.parquet", "pairs.parquet")]


def test_lfw_probe_records_each_measure_it_cannot_compute(tmp_path):
    # one person with many images (the others have one each): no identification; pairs in one fold only
    files = _lfw_files(tmp_path, ["ann"] * 6 + ["bob", "cy"], [0] * 8)
    res = protocol.lfw_result(*files, run="all", seed=0, min_images=4)
    assert res["verification"] == {"computable": False, "n_pairs": 8, "n_folds": 1,
                                   "reason": "pair verification needs usable pairs in at least two folds"}
    assert res["identification"]["computable"] is False and "1 of 3 people" in res["identification"]["reason"]
    assert res["encoder_sha256"] == "0" * 64 and res["pairs"] == {"total": 8, "usable": 8, "folds": 1}
    assert_plain_json(res)
    # the same items with two folds: verification is computed, identification still recorded as not computable
    files = _lfw_files(tmp_path, ["ann"] * 6 + ["bob", "cy"], [0] * 4 + [1] * 4)
    res = protocol.lfw_result(*files, run="all", seed=0, min_images=4)
    assert res["verification"]["computable"] is True and res["verification"]["n_folds"] == 2
    assert res["identification"]["computable"] is False


def _expression_files(tmp_path, split: list[str], valence: float):
    """An AffectNet-shaped item table and feature file: 3 separable classes of 8 items (features from arrays)."""
    rng = np.random.default_rng(5)
    x, y = blobs(rng, 8, 3, 6, 0.5)
    n = len(y)
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "crop_index": np.arange(n), "label": y,
                          "split": split, "status": "ok", "valence": valence, "arousal": valence})
    pq.write_table(pa.Table.from_pandas(items, preserve_index=False), tmp_path / "items.parquet")
    write_parquet(pa.table({"item_id": items.item_id, "feature": feature_column(x, np.ones(n, bool), 6)}),
                  tmp_path / "features.parquet", {"encoder": "enc.pt", "encoder_sha256": "0" * 64})
    return str(tmp_path / "items.parquet"), str(tmp_path / "features.parquet")


def test_expression_probe_without_targets_or_test_rows(tmp_path):
    split = ["train", "train", "test", "train", "test", "train", "train", "train"] * 3
    res = protocol.expression_result("affectnet", *_expression_files(tmp_path, split, np.nan), "all", 0, 8,
                                    protocol.AFFECTNET_CLASSES, valence_arousal=True)
    assert res["expression"]["computable"] is True and res["expression"]["accuracy"] == 1.0
    pred = res["expression"]["test_predictions"]          # per test row of the item table, in its order
    assert pred["rows"] == [k for k, s in enumerate(split) if s == "test"] and pred["y_true"] == pred["y_pred"]
    assert res["valence"] == res["arousal"] == {"computable": False, "reason": "no test rows with targets",
                                                "n_train": 0, "n_test": 0}
    assert_plain_json(res)
    res = protocol.expression_result("fer2013", *_expression_files(tmp_path, ["train"] * 24, 0.1), "all", 0, 7,
                                    protocol.FER2013_CLASSES, valence_arousal=False)
    assert res["expression"] == {"computable": False, "reason": "no test rows", "n_train": 24, "n_test": 0}
    png = plots.expression_confusion(res, tmp_path / "confusion.png", "fer2013")
    assert cv2.imread(str(png)) is not None


def test_figures_skip_what_cannot_be_plotted(tmp_path):
    nc = {"expression": {"computable": False, "reason": "no test rows"}, "classes": ["a", "b"]}
    png = plots.expression_confusion(nc, tmp_path / "nc.png", "fer2013")
    assert cv2.imread(str(png)) is not None
    ok = {"expression": {"computable": True, "confusion": [[3, 1], [0, 2]], "accuracy": 5 / 6}, "classes": ["a", "b"]}
    assert cv2.imread(str(plots.expression_confusion(ok, tmp_path / "ok.png", "fer2013"))) is not None
    # one identity with one frame, an expression panel with a non-finite row: no crash, both panels drawn
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5))
    x[0] = np.nan
    png = plots.embedding_plot(x, list("aabbcc"), rng.standard_normal((1, 5)), ["id0"], tmp_path / "emb.png", "t")
    assert cv2.imread(str(png)) is not None
    assert plots.pca_2d(rng.standard_normal((4, 1))).shape == (4, 2)
