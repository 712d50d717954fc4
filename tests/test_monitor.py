"""The training monitor (monitor.jsonl): when it measures, what a record holds, that it leaves training exactly
as it was, that a resumed run's log continues the killed one's, and the kNN probes on sets with known answers."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from sslfer.train.data import TrainingData
from sslfer.train.model import ContrastiveModel
from sslfer.train.monitor import Monitor, expression_set, identity_set, knn_predict
from sslfer.train.settings import TrainConfig, Variant
from sslfer.train.trainer import Trainer

MON = TrainConfig(batch_tracks=6, steps=5, resize=36, crop=32, width=16, checkpoint_every=2, warmup_steps=2,
                  monitor_every=2, variant=Variant(time_aug=True, hard_neg=True, face_swap=False, mask_fn="off"))
PROBES = ("expression_f1", "expression_acc", "identity_acc")


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "train_seconds", "images_per_s")} for r in records]


@pytest.fixture(scope="module")
def data(pretrain_corpus):
    return TrainingData(pretrain_corpus / "pairs.parquet", pretrain_corpus / "frames")


@pytest.fixture(scope="module")
def monitor(data, affectnet_prepared):
    items, crops = affectnet_prepared
    return Monitor(expression_set(str(items), str(crops), 8, 60, MON.seed), identity_set(data, 4, MON.seed),
                   MON.resize, MON.crop)


@pytest.fixture(scope="module")
def runs(data, monitor, tmp_path_factory):
    """Folders of three runs of MON: monitored, the same without a monitor, and monitored but killed after step
    3 (checkpoint at 2) then resumed."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("monitor_runs")
    assert Trainer(data, MON, root / "monitored", monitor=monitor).fit({"note": "m"}) is not None
    assert Trainer(data, replace(MON, monitor_every=0), root / "plain", monitor=monitor).fit({"note": "m"}) is not None
    killed = Trainer(data, MON, root / "resumed", monitor=monitor)
    assert killed.fit(stop_after=3) is None
    (root / "killed.jsonl").write_text((root / "resumed" / "monitor.jsonl").read_text())
    assert Trainer(data, MON, root / "resumed", monitor=monitor).fit({"note": "m"}) is not None
    return root


def test_the_monitor_measures_at_step_0_every_monitor_every_and_at_the_end(runs, data):
    records = lines(runs / "monitored" / "monitor.jsonl")
    metrics = lines(runs / "monitored" / "metrics.jsonl")
    assert [r["step"] for r in records] == [0, 2, 4, 5]
    assert not (runs / "plain" / "monitor.jsonl").exists()            # monitor_every = 0: no monitor
    rows = 4 * MON.batch_tracks
    assert all(m["rows"] == rows for m in metrics)
    previous = 0
    for r in records:
        for k in PROBES:
            assert 0.0 <= r[k] <= 1.0, (k, r)
        assert r["view"] == [MON.resize, MON.crop]                     # how the probes saw the images
        if r["step"] == 0:
            assert not {"loss_nce", "chance", "nce_ratio"} & set(r)
            continue
        # the contrastive loss of the steps since the previous record, beside its chance level ln(rows − 1)
        since = [m["loss_nce"] for m in metrics if previous < m["step"] <= r["step"]]
        assert r["loss_nce"] == pytest.approx(np.mean(since), abs=6e-5)
        assert r["chance"] == pytest.approx(math.log(rows - 1), abs=6e-5)
        assert r["nce_ratio"] == pytest.approx(r["loss_nce"] / r["chance"], abs=2e-4)
        previous = r["step"]


def test_a_monitored_run_trains_exactly_as_an_unmonitored_one(runs):
    mon, plain = lines(runs / "monitored" / "metrics.jsonl"), lines(runs / "plain" / "metrics.jsonl")
    assert [m["step"] for m in mon] == list(range(1, MON.steps + 1))
    assert without_timing(mon) == without_timing(plain)                # losses, similarities, lr: bit for bit
    a = torch.load(runs / "monitored" / "checkpoint.pt", weights_only=False)
    b = torch.load(runs / "plain" / "checkpoint.pt", weights_only=False)
    assert a["digest"] == b["digest"]                                  # monitor_every does not shape the encoder
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])     # BatchNorm buffers too
    for k, v in a["optimizer"]["state"].items():
        assert all(torch.equal(v[s], b["optimizer"]["state"][k][s]) for s in v)


def test_the_last_record_measures_the_final_encoder(runs, monitor):
    """The step-5 record is what the monitor says of the saved encoder (and the step-0 one of the seed's
    untrained network): the records describe the weights they are logged with."""
    records = {r["step"]: r for r in lines(runs / "monitored" / "monitor.jsonl")}
    enc = torch.load(runs / "monitored" / "encoder.pt", weights_only=False)
    model = ContrastiveModel(MON.backbone, MON.projection_dim, MON.width, MON.stem)
    model.backbone.load_state_dict(enc["backbone"])
    model.train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    again = monitor.measure(model, 5, torch.device("cpu"))
    assert {k: again[k] for k in PROBES} == {k: records[5][k] for k in PROBES}
    assert model.training                                              # back in training mode
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())   # no BatchNorm update
    torch.manual_seed(MON.seed)
    fresh = ContrastiveModel(MON.backbone, MON.projection_dim, MON.width, MON.stem)
    assert {k: records[0][k] for k in PROBES} == {k: monitor.measure(fresh, 0, torch.device("cpu"))[k] for k in PROBES}


def test_a_resumed_run_continues_the_monitor_log(runs):
    killed = lines(runs / "killed.jsonl")
    assert [r["step"] for r in killed] == [0, 2]                       # killed after step 3: nothing at 3
    resumed = lines(runs / "resumed" / "monitor.jsonl")
    steps = [r["step"] for r in resumed]
    assert steps == [0, 2, 4, 5] and len(set(steps)) == len(steps) and steps[-1] == MON.steps
    # ... and it is the log of the uninterrupted run (training resumes exactly)
    assert without_timing(resumed) == without_timing(lines(runs / "monitored" / "monitor.jsonl"))
    assert [m["step"] for m in lines(runs / "resumed" / "metrics.jsonl")] == list(range(1, MON.steps + 1))


def test_the_first_record_after_a_resume_averages_all_steps_since_the_previous_record(data, monitor, tmp_path):
    torch.set_num_threads(1)
    cfg = replace(MON, steps=4, monitor_every=3)                       # records at 0, 3, 4; checkpoints at 2, 4
    Trainer(data, cfg, tmp_path / "full", monitor=monitor).fit()
    Trainer(data, cfg, tmp_path / "res", monitor=monitor).fit(stop_after=3)      # killed after the step-3 record
    Trainer(data, cfg, tmp_path / "res", monitor=monitor).fit()                 # resumes at 2
    full, res = lines(tmp_path / "full" / "monitor.jsonl"), lines(tmp_path / "res" / "monitor.jsonl")
    assert [r["step"] for r in res] == [r["step"] for r in full] == [0, 3, 4]
    assert res[1]["loss_nce"] == full[1]["loss_nce"]


# --------------------------------------------------------------------------------------------- the probes
def clusters(n: int, rng: np.random.Generator, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.repeat(np.arange(len(centres)), n)
    return centres[labels] + 0.1 * rng.standard_normal((len(labels), centres.shape[1])), labels


def test_knn_predict_on_separated_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 0, 5.0]]) + 20.0    # off the origin: centring matters
    x, labels = clusters(12, rng, centres)
    reference = np.zeros(len(labels), bool)
    reference[rng.permutation(len(labels))[:18]] = True
    assert set(labels[reference]) == {0, 1, 2}
    pred = knn_predict(x, labels, reference, 3, k=5)
    assert pred.shape == ((~reference).sum(),) and (pred == labels[~reference]).all()
    # query labels that disagree with their cluster: every prediction is wrong (queries never vote)
    flipped = labels.copy()
    flipped[~reference] = (labels[~reference] + 1) % 3
    pred = knn_predict(x, flipped, reference, 3, k=5)
    assert (pred == labels[~reference]).all() and (pred != flipped[~reference]).all()
    # reference labels permuted: the predictions follow the reference, not the cluster
    relabel = np.where(reference, (labels + 1) % 3, labels)
    assert (knn_predict(x, relabel, reference, 3, k=5) == (labels[~reference] + 1) % 3).all()
    # k larger than the reference set: every reference row votes, the closest dominates
    assert (knn_predict(x, labels, reference, 3, k=1000) == labels[~reference]).all()


def test_knn_votes_are_weighted_by_similarity():
    """A vote is weighted by exp(cos / 0.07), not counted: one very close row of class 1 beats two moderately
    close rows of class 0 (a plain majority of the 3 nearest would say 0)."""
    q = np.array([[1.0, 0.0]])
    ref = np.array([[1.0, 0.01], [0.8, 0.6], [0.8, -0.6], [-1.0, 0.0]])
    x = np.concatenate([q, ref])
    labels = np.array([0, 1, 0, 0, 2])
    reference = np.array([False, True, True, True, True])
    # centring on the reference mean moves the origin; the nearest (class 1) row still wins by its weight
    assert knn_predict(x, labels, reference, 3, k=3).tolist() == [1]


def test_identity_set_holds_out_one_track_per_identity(coded_corpus):
    coded = coded_corpus
    data = TrainingData(coded.pairs, coded.frames)
    identity_of = np.array([int(p[2:]) for p, _, _ in coded.tracks])
    s = identity_set(data, 3, seed=0)
    track, frame = coded.decode(s.images)
    # identities with two or more tracks that have frames: id00001 (2), id00002 (3), id00003 (5, at most 4 kept);
    # id00000 has one track, id00004 one with frames and one without
    assert s.n_classes == 3 and sorted(set(identity_of[track])) == [1, 2, 3]
    for label in range(s.n_classes):
        mine = s.labels == label
        assert len(set(identity_of[track[mine]])) == 1                 # a label is one person
        query, ref = set(track[mine & ~s.reference]), set(track[mine & s.reference])
        assert len(query) == 1 and ref and not query & ref             # one held-out track, never a reference
        assert len(query | ref) == min(4, int((identity_of == identity_of[track[mine][0]]).sum()))
    for t in set(track):                                               # evenly spaced frames, first and last
        n = int(round(coded.tracks[t][1] / coded.step)) + 1
        f = frame[track == t]
        assert len(f) == 3 and f[0] == 0 and f[2] == n - 1 and abs(f[1] - (n - 1) / 2) <= 0.5
    # seeded: the same seed gives the same set, other seeds other choices; at most max_identities people
    again = identity_set(data, 3, seed=0)
    assert np.array_equal(again.images, s.images) and np.array_equal(again.reference, s.reference)
    queries = set()
    for k in range(8):
        other = identity_set(data, 3, seed=k)
        queries.add(tuple(sorted(set(coded.decode(other.images[~other.reference])[0]))))
    assert len(queries) > 1
    two = identity_set(data, 2, seed=1, max_identities=2, max_tracks=2)
    t2 = coded.decode(two.images)[0]
    assert two.n_classes == 2 and len(set(identity_of[t2])) == 2 and len(set(t2)) == 4


def test_identity_set_is_none_without_a_second_track(coded_corpus, tmp_path):
    """Every track of its own person: identity cannot be measured on held-out tracks."""
    import pyarrow as pa

    from sslfer.parquet import read_provenance, write_parquet

    table = pq.read_table(coded_corpus.pairs)
    table = table.set_column(table.schema.get_field_index("identity"), "identity",
                             pa.array([f"p{k}" for k in range(table.num_rows)]))
    write_parquet(table, tmp_path / "pairs.parquet", read_provenance(coded_corpus.pairs))
    assert identity_set(TrainingData(tmp_path / "pairs.parquet", coded_corpus.frames), 3, seed=0) is None


def test_expression_set_reads_only_usable_training_items(tmp_path):
    import pyarrow as pa

    crops = np.arange(40, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    np.save(tmp_path / "crops.npy", crops)
    split = ["train"] * 30 + ["test"] * 10
    label = [k % 3 for k in range(30)] + [0] * 10
    crop_index = list(range(40))
    crop_index[3] = -1                                                 # not cropped
    label[4] = 9                                                       # not one of the classes
    pq.write_table(pa.table({"split": split, "label": label, "crop_index": crop_index}), tmp_path / "items.parquet")
    s = expression_set(str(tmp_path / "items.parquet"), str(tmp_path / "crops.npy"), 3, per_class=6, seed=0)
    row = s.images[:, 0, 0, 0].astype(int)                             # the crop (= item) each image is
    assert (row < 30).all() and 3 not in row and 4 not in row          # train split, usable, in range
    assert np.array_equal(s.labels, np.array(label)[row])              # images and labels stay together
    for c in range(3):
        assert (s.labels == c).sum() == 6 and (s.reference & (s.labels == c)).sum() == 3
    assert np.array_equal(expression_set(str(tmp_path / "items.parquet"), str(tmp_path / "crops.npy"), 3, 6, 0).images,
                          s.images)
