"""The synthetic corpus is written in the real datasets' own layouts, readable by the real loaders."""

from __future__ import annotations

import csv
import re

import av
import decord
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sslfer.parquet import landmarks_numpy, read_provenance
from sslfer.synth.expression import CLASSES, FER2013_CLASSES, FER2013_FROM_CLASS


def test_voxceleb_tree_and_meta(tiny_corpus, synth_cfg):
    vids = sorted((tiny_corpus / "voxceleb" / "videos").rglob("*.mp4"))
    v = synth_cfg["videos"]
    assert len(vids) == v["identities"] * v["clips_per_identity"] * v["utterances_per_clip"]
    for p in vids:
        rel = p.relative_to(tiny_corpus / "voxceleb" / "videos").as_posix()
        assert re.fullmatch(r"id1\d{4}/[A-Za-z0-9_-]{11}/\d{5}\.mp4", rel), rel
    with open(tiny_corpus / "voxceleb" / "vox1_meta.csv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert {r["VoxCeleb1 ID"] for r in rows} == {p.relative_to(tiny_corpus / "voxceleb" / "videos").parts[0] for p in vids}
    assert set(rows[0]) == {"VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"}


def test_videos_are_h264_25fps_and_match_ground_truth(tiny_corpus):
    gt = pq.read_table(tiny_corpus / "groundtruth" / "videos.parquet").to_pandas()
    for path, frames in gt.groupby("path"):
        with av.open(str(tiny_corpus / path)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "h264"
            assert s.average_rate == 25
            assert (s.width, s.height) == (224, 224)
        vr = decord.VideoReader(str(tiny_corpus / path))
        assert len(vr) == len(frames) == frames["frame_idx"].max() + 1
        assert np.allclose(frames["t_s"].to_numpy(), frames["frame_idx"].to_numpy() / 25)
    # a video shows several expression classes over its length
    n_classes = gt[gt.expression > 0].groupby("video_id")["expression"].nunique()
    assert n_classes.max() >= 2


def test_affectnet_lists(tiny_corpus, synth_cfg):
    lists = tiny_corpus / "affectnet" / "Manually_Annotated_file_lists"
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    train = pd.read_csv(lists / "training.csv")
    assert list(train.columns) == header
    # validation.csv has no header row, as in the real release
    first = (lists / "validation.csv").read_text().splitlines()[0]
    assert not first.startswith("subDirectory_filePath")
    val = pd.read_csv(lists / "validation.csv", header=None, names=header)
    a = synth_cfg["affectnet"]
    assert (val.expression.value_counts() == a["val_per_class"]).all() and set(val.expression) == set(range(8))
    assert set(train.expression) >= set(range(11)) - {8, 9, 10} and {8, 9, 10} <= set(train.expression)
    for df in (train, val):
        for _, row in df.iterrows():
            img = tiny_corpus / "affectnet" / "Manually_Annotated_Images" / row.subDirectory_filePath
            assert img.is_file(), img
            if row.expression == 10:               # No-Face: no landmarks, unannotated valence/arousal
                assert pd.isna(row.facial_landmarks) and row.valence == -2 and row.arousal == -2
                continue
            pts = np.array(row.facial_landmarks.split(";"), float).reshape(68, 2)
            assert (pts[:, 0] >= row.face_x - 1).all() and (pts[:, 0] <= row.face_x + row.face_width + 1).all()
            assert -1 <= row.valence <= 1 and -1 <= row.arousal <= 1


def test_fer2013_csv(tiny_corpus, synth_cfg):
    df = pd.read_csv(tiny_corpus / "fer2013" / "fer2013.csv")
    assert list(df.columns) == ["emotion", "pixels", "Usage"]
    assert all(len(p.split()) == 48 * 48 for p in df.pixels)
    px = np.array(df.pixels.iloc[0].split(), int)
    assert 0 <= px.min() and px.max() <= 255 and px.std() > 10
    f = synth_cfg["fer2013"]
    counts = df.groupby("Usage").emotion.value_counts()
    assert (counts.loc["Training"] == f["train_per_class"]).all()
    assert (counts.loc["PublicTest"] == f["test_per_class"]).all()
    assert set(df.emotion) == set(range(len(FER2013_CLASSES)))
    # FER2013's label order is not AffectNet's: check the mapping through the ground truth
    gt = pq.read_table(tiny_corpus / "groundtruth" / "fer2013.parquet").to_pandas()
    assert (gt.emotion.to_numpy() == df.emotion.to_numpy()).all()
    assert all(FER2013_FROM_CLASS[CLASSES[e]] == m for e, m in zip(gt.expression, gt.emotion))


def test_lfw_loads_with_scikit_learn_offline(tiny_corpus, synth_cfg):
    from sklearn.datasets import fetch_lfw_pairs, fetch_lfw_people

    home = tiny_corpus / "lfw"
    folds = fetch_lfw_pairs(subset="10_folds", data_home=home, download_if_missing=False)
    n = synth_cfg["lfw"]["pairs_per_fold"]
    assert folds.pairs.shape[0] == 10 * 2 * n and folds.target.mean() == 0.5
    train = fetch_lfw_pairs(subset="train", data_home=home, download_if_missing=False)
    assert train.pairs.shape[0] == 2 * synth_cfg["lfw"]["dev_train_pairs"]
    test = fetch_lfw_pairs(subset="test", data_home=home, download_if_missing=False)
    assert test.pairs.shape[0] == 2 * synth_cfg["lfw"]["dev_test_pairs"]
    people = fetch_lfw_people(data_home=home, download_if_missing=False, min_faces_per_person=2)
    assert len(people.target_names) >= 5
    assert people.images.std(axis=(1, 2)).min() > 0.02     # images in [0, 1]: no flat crops


def test_lfw_faces_sit_inside_scikit_learns_default_crop(tiny_corpus):
    # fetch_lfw_* crop rows 70-195, cols 78-172 (assumes LFW's funneled centring)
    lm = landmarks_numpy(pq.read_table(tiny_corpus / "groundtruth" / "lfw.parquet").column("landmarks"))
    inner = lm[:, 27:68]                         # nose, eyes, mouth
    assert inner[..., 0].min() >= 78 and inner[..., 0].max() <= 172
    assert inner[..., 1].min() >= 70 and inner[..., 1].max() <= 195


def test_lfw_view1_people_disjoint(tiny_corpus):
    def names(fname):
        lines = (tiny_corpus / "lfw" / "lfw_home" / fname).read_text().split("\n")[1:]
        return {p for ln in lines if ln for p in ln.split("\t")[::2] if not p.isdigit()}

    assert not names("pairsDevTrain.txt") & names("pairsDevTest.txt")


def test_ground_truth_columns_and_provenance(tiny_corpus):
    for name in ("videos", "affectnet", "fer2013", "lfw"):
        path = tiny_corpus / "groundtruth" / f"{name}.parquet"
        t = pq.read_table(path)
        for col in ("identity", "expression", "expression_name", "intensity", "valence", "arousal", "landmarks"):
            assert col in t.column_names, (name, col)
        lm = landmarks_numpy(t.column("landmarks"))
        assert lm.shape == (t.num_rows, 68, 2)
        prov = read_provenance(path)
        assert prov["rule"] == f"synth_{name}" and prov["seed"] == 0 and prov["config"]


def test_pretraining_and_evaluation_identities_are_disjoint(tiny_corpus):
    sets = {}
    for name in ("videos", "affectnet", "fer2013", "lfw"):
        t = pq.read_table(tiny_corpus / "groundtruth" / f"{name}_identities.parquet")
        sets[name] = set(t.column("number").to_pylist())
        names = t.column("name").to_pylist()
        assert len(set(names)) == len(names)
    for other in ("affectnet", "fer2013", "lfw"):
        assert not sets["videos"] & sets[other]


@pytest.mark.parametrize("dataset", ["affectnet", "fer2013", "lfw"])
def test_valence_arousal_follow_the_circumplex(tiny_corpus, dataset):
    from sslfer.synth.expression import CIRCUMPLEX, VA_NOISE_STD

    gt = pq.read_table(tiny_corpus / "groundtruth" / f"{dataset}.parquet").to_pandas()
    gt = gt[gt.expression < 8]
    expected = CIRCUMPLEX[gt.expression.to_numpy()] * gt.intensity.to_numpy()[:, None]
    got = gt[["valence", "arousal"]].to_numpy()
    assert np.abs(got - expected).max() < 5 * VA_NOISE_STD
