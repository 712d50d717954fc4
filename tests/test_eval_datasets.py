"""Evaluation readers and face preparation on the synthetic AffectNet/FER2013/LFW written in the real layouts."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from sslfer.evaluate.datasets.affectnet import read_affectnet_csv, read_affectnet_npy
from sslfer.evaluate.datasets.fer2013 import FER2013_FOLDERS, read_fer2013_csv, read_fer2013_folders
from sslfer.evaluate.datasets.lfw import read_lfw
from sslfer.evaluate.faces import CROPPED, FER_ANCHORS, prepare_dataset
from sslfer.parquet import landmarks_numpy, read_provenance
from sslfer.preprocess.align import TEMPLATE, anchor_points, similarity

REPO = Path(__file__).resolve().parents[1]
S = 128


@pytest.fixture(scope="module")
def pre() -> dict:
    """The ``preprocess`` config section of tests/data/tiny.yaml, defaults filled in."""
    from sslfer.config import prepare_config

    cfg = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())
    return prepare_config(cfg, REPO / "config" / "schema.yaml", base=REPO)["preprocess"]


def _gt(root: Path, name: str):
    table = pq.read_table(root / "groundtruth" / f"{name}.parquet")
    return table.to_pandas(), landmarks_numpy(table.column("landmarks"))


def _anchor_error(items, truth: np.ndarray) -> np.ndarray:
    """Per item: max distance (crop px) of the truth eye/mouth centres, mapped by ``transform``, to the template."""
    m = np.stack(items["transform"].to_numpy()).reshape(-1, 2, 3).astype(np.float64)
    a = np.stack([anchor_points(t) for t in truth])
    mapped = np.einsum("nij,nkj->nki", m[:, :, :2], a) + m[:, None, :, 2]
    return np.linalg.norm(mapped - TEMPLATE * S, axis=2).max(1)


def _sources(ds) -> dict:
    return {row: (src, err) for row, src, err in ds.sources()}


# --------------------------------------------------------------------------------------------------
# AffectNet


def test_affectnet_csv_matches_truth(tiny_corpus):
    root = tiny_corpus / "affectnet"
    first_val = (root / "Manually_Annotated_file_lists" / "validation.csv").read_text().splitlines()[0]
    assert not first_val.startswith("subDirectory_filePath")          # the real header-less validation list
    ds = read_affectnet_csv(root)
    items = ds.items.to_pandas()
    gt, _ = _gt(tiny_corpus, "affectnet")
    g = gt.set_index("subDirectory_filePath").loc[items.item_id].reset_index(drop=True)
    assert len(items) == len(gt) and items.item_id.is_unique
    assert (items.label.to_numpy() == g.expression.to_numpy()).all()
    assert (items.split.to_numpy() == g.split.map({"training": "train", "validation": "test"}).to_numpy()).all()
    excluded = g.expression.to_numpy() >= 8
    assert excluded.sum() > 0 and (items.status[excluded] == "excluded_class").all()
    assert (items.status[~excluded] == "ok").all()
    ok = items.status == "ok"
    assert np.allclose(items.valence[ok], g.valence[ok], atol=1e-5)
    assert np.allclose(items.arousal[ok], g.arousal[ok], atol=1e-5)
    assert np.isnan(items.valence[g.valence.to_numpy() == -2]).all()
    assert sorted(_sources(ds)) == list(np.flatnonzero(ok))


def _bad_affectnet(tiny_corpus: Path, tmp: Path) -> tuple[Path, dict]:
    """A copy of the AffectNet lists with bad rows appended (images linked); returns (root, {what: line})."""
    src = tiny_corpus / "affectnet"
    root = tmp / "affectnet"
    (root / "Manually_Annotated_file_lists").mkdir(parents=True)
    (root / "Manually_Annotated_Images").symlink_to(src / "Manually_Annotated_Images")
    lists = src / "Manually_Annotated_file_lists"
    val = (lists / "validation.csv").read_text()
    header = (lists / "training.csv").read_text().splitlines()[0]
    (root / "Manually_Annotated_file_lists" / "validation.csv").write_text(f"{header}\n{val}")   # header detected
    lines = (lists / "training.csv").read_text().splitlines()
    good = [r for r in csv.reader(lines[1:]) if r[6] in "01234567" and r[5]]

    def row(base, **change):
        r = list(base)
        for k, v in change.items():
            r[["path", "x", "y", "w", "h", "lm", "exp", "val", "aro"].index(k)] = v
        return ",".join(r)

    extra = {
        "columns": ",".join(["x/few_columns.jpg"] + good[0][1:5]),
        "duplicate": row(good[7]),
        "number": row(good[1], path="x/bad_number.jpg", val="high"),
        "landmarks": row(good[2], path="x/short_lm.jpg", lm=";".join(good[2][5].split(";")[:135])),
        "missing": row(good[3], path="x/not_there.jpg"),
        "va": row(good[4], val="-2", aro="-2"),
        "no_lm": row(good[5], lm=""),
        "zero_lm": row(good[6], lm=";".join(["0"] * 136)),
    }
    kept = [ln for ln in lines if not any(ln.startswith(good[k][0] + ",") for k in (4, 5, 6))]   # rows replaced
    (root / "Manually_Annotated_file_lists" / "training.csv").write_text("\n".join(kept + list(extra.values())) + "\n")
    return root, {k: len(kept) + 1 + i for i, k in enumerate(extra)} | {"original": len(lines) - 1,
                                                                          "val": val.count("\n")}


def test_affectnet_bad_rows_reported(tiny_corpus, tmp_path):
    root, line = _bad_affectnet(tiny_corpus, tmp_path)
    items = read_affectnet_csv(root).items.to_pandas()
    assert len(items) == line["original"] + 5 + line["val"]            # 8 appended, 3 of them replace rows
    by_line = {k: items[items.error.fillna("").str.contains(f"training.csv line {line[k]}:")] for k in line
               if k not in ("original", "val")}
    assert (by_line["columns"].status == "malformed_row").all() and "5 columns" in by_line["columns"].error.iloc[0]
    assert by_line["number"].status.tolist() == ["malformed_row"]
    assert by_line["landmarks"].status.tolist() == ["malformed_row"]
    assert "135 values" in by_line["landmarks"].error.iloc[0]
    assert by_line["duplicate"].status.tolist() == ["duplicate_item"] and items.item_id.is_unique
    assert by_line["missing"].status.tolist() == ["missing_image"]
    assert "x/not_there.jpg" in by_line["missing"].error.iloc[0]
    counts = items.status.value_counts()
    assert counts["malformed_row"] == 3 and counts["missing_image"] == 1
    assert (items.split == "test").sum() == line["val"]              # the header row of validation.csv skipped
    assert read_affectnet_csv(root).counts["valence_arousal_not_annotated"] == 1


def test_affectnet_npy_release(tiny_corpus, tmp_path):
    gt, lm = _gt(tiny_corpus, "affectnet")
    root = tmp_path / "affectnet_npy"
    made = {}
    for i, r in gt.iterrows():
        if r.expression >= 8:
            continue
        set_dir = "train_set" if r.split == "training" else "val_set"
        n = str(i)
        img = cv2.imread(str(tiny_corpus / r.path))
        scale = 224 / img.shape[1]
        (root / set_dir / "images").mkdir(parents=True, exist_ok=True)
        (root / set_dir / "annotations").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / set_dir / "images" / f"{n}.jpg"), cv2.resize(img, (224, 224)))
        ann = root / set_dir / "annotations"
        np.save(ann / f"{n}_exp.npy", np.array(str(r.expression)))          # the release stores strings
        np.save(ann / f"{n}_val.npy", np.array(f"{r.valence:.6f}"))
        np.save(ann / f"{n}_aro.npy", np.array(f"{r.arousal:.6f}"))
        np.save(ann / f"{n}_lnd.npy", (lm[i] * scale).reshape(-1).astype(np.float64))
        made[f"{set_dir}/{n}"] = r
    train = sorted(k for k in made if k.startswith("train_set"))
    (root / "train_set" / "images" / f"{train[0].split('/')[1]}.jpg").unlink()                     # missing image
    (root / "train_set" / "annotations" / f"{train[1].split('/')[1]}_exp.npy").unlink()           # no annotation
    np.save(root / "train_set" / "annotations" / f"{train[2].split('/')[1]}_lnd.npy", np.zeros(10))  # bad
    items = read_affectnet_npy(root).items.to_pandas().set_index("item_id")
    assert sorted(items.index) == sorted(made)
    assert items.loc[train[0], "status"] == "missing_image"
    assert items.loc[train[1], "status"] == "missing_annotation"
    assert items.loc[train[2], "status"] == "malformed_row" and "_lnd.npy" in items.loc[train[2], "error"]
    ok = items[items.status == "ok"]
    assert len(ok) == len(made) - 3
    assert (ok.label == [made[k].expression for k in ok.index]).all()
    assert np.allclose(ok.valence, [made[k].valence for k in ok.index], atol=1e-5)
    assert set(ok.split) == {"train", "test"}


# --------------------------------------------------------------------------------------------------
# FER2013


def test_fer2013_csv_and_malformed_rows(tiny_corpus, tmp_path):
    path = tiny_corpus / "fer2013" / "fer2013.csv"
    ds = read_fer2013_csv(path)
    items = ds.items.to_pandas()
    gt, _ = _gt(tiny_corpus, "fer2013")
    assert (items.csv_row == gt.row).all() and (items.label == gt.emotion).all() and (items.status == "ok").all()
    assert (items.split == gt.Usage.map({"Training": "train", "PrivateTest": "val", "PublicTest": "test"})).all()
    rows = list(csv.reader(path.read_text().splitlines()))
    src = _sources(ds)
    assert np.array_equal(src[5][0][:, :, 0], np.array(rows[6][1].split(), np.uint8).reshape(48, 48))
    rows[3][1] = " ".join(rows[3][1].split()[:-1])                     # 2303 pixels (line 4)
    rows[8][0] = "9"                                                   # emotion out of range (line 9)
    bad = tmp_path / "fer2013.csv"
    with open(bad, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    items = read_fer2013_csv(bad).items.to_pandas()
    assert len(items) == len(gt)
    assert items.status.value_counts()["malformed_row"] == 2
    assert "line 4: 2303 pixels" in items.error[2] and "line 9: emotion 9" in items.error[7]


def test_fer2013_folders(tiny_corpus, tmp_path):
    gt, _ = _gt(tiny_corpus, "fer2013")
    rows = list(csv.DictReader((tiny_corpus / "fer2013" / "fer2013.csv").read_text().splitlines()))
    for k, r in enumerate(rows):
        sub = {"Training": "train", "PublicTest": "test"}.get(r["Usage"])
        if sub:
            d = tmp_path / sub / FER2013_FOLDERS[int(r["emotion"])]
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{k:05d}.png"), np.array(r["pixels"].split(), np.uint8).reshape(48, 48))
    (tmp_path / "train" / "bored").mkdir()
    cv2.imwrite(str(tmp_path / "train" / "bored" / "x.png"), np.zeros((48, 48), np.uint8))
    items = read_fer2013_folders(tmp_path).items.to_pandas()
    ok = items[items.status == "ok"]
    k = ok.item_id.str.extract(r"/(\d+)\.png$")[0].astype(int)
    assert (ok.label.to_numpy() == gt.emotion[k].to_numpy()).all()
    assert len(ok) == (gt.Usage != "PrivateTest").sum()
    assert items.status.value_counts()["unknown_class"] == 1


# --------------------------------------------------------------------------------------------------
# LFW


def test_lfw_through_sklearn_with_folds(tiny_corpus, synth_cfg):
    home = tiny_corpus / "lfw"
    ds = read_lfw(home, min_faces_per_person=3, chunk_images=16)      # small chunks: several loader calls
    items, pairs = ds.items.to_pandas(), ds.pairs.to_pandas()
    n = synth_cfg["lfw"]["pairs_per_fold"]
    assert len(pairs) == 10 * 2 * n and (pairs.groupby("fold").size() == 2 * n).all()
    assert (pairs.same == np.tile(np.r_[np.ones(n, bool), np.zeros(n, bool)], 10)).all()
    ident = items.identity.to_numpy()
    assert ((ident[pairs.row_a] == ident[pairs.row_b]) == pairs.same).all()
    assert (items.item_id.to_numpy()[pairs.row_a] == pairs.item_a).all() and items.item_id.is_unique
    assert set(items.role) == {"pairs", "people"} and (items.status == "ok").all()
    src = _sources(ds)
    assert sorted(src) == list(range(len(items)))
    decoded: dict[str, list[np.ndarray]] = {}
    for p in sorted((home / "lfw_home" / "lfw_funneled").glob("*/*.jpg")):
        decoded.setdefault(p.parent.name.replace("_", " "), []).append(np.asarray(Image.open(p).convert("RGB")))
    for row, it in items.iterrows():
        img = src[row][0]
        assert img.shape == (250, 250, 3) and img.dtype == np.uint8
        if it.role == "pairs":                                       # the very file pairs.txt names
            assert np.array_equal(img, np.asarray(Image.open(it.path).convert("RGB")))
        else:                                                        # one of that person's files
            assert any(np.array_equal(img, d) for d in decoded[it.identity])
    assert all(len(decoded[p]) >= 3 for p in items.identity[items.role == "people"])
    assert not (home / "lfw_home" / "joblib").exists()               # nothing written into the data folder


# --------------------------------------------------------------------------------------------------
# prepare_dataset: crops framed like the pretraining crops


def test_prepare_affectnet_crops_on_template(tiny_corpus, tmp_path, pre):
    root, _ = _bad_affectnet(tiny_corpus, tmp_path)
    out = tmp_path / "out"
    counts = prepare_dataset("affectnet", {"format": "affectnet_csv", "path": str(root)}, pre,
                             out / "items.parquet", out / "crops.npy", {"rule": "test"})
    items = pq.read_table(out / "items.parquet").to_pandas()
    crops = np.load(out / "crops.npy", mmap_mode="r")
    assert sum(counts.values()) == len(items) and counts["detected_landmarks"] == 2
    assert read_provenance(out / "items.parquet")["status_counts"] == dict(sorted(counts.items()))
    has = items.crop_index >= 0
    assert (items.status[has].isin(CROPPED)).all() and not items.status[~has].isin(CROPPED).any()
    assert items.crop_index[has].is_unique and crops.shape[1:] == (S, S, 3)
    gt, lm = _gt(tiny_corpus, "affectnet")
    key = {p: i for i, p in enumerate(gt.subDirectory_filePath)}
    ok = items[has]
    err = _anchor_error(ok, lm[[key[k] for k in ok.item_id]])
    assert err[(ok.status == "ok").to_numpy()].max() < 6
    assert err[(ok.status == "detected_landmarks").to_numpy()].max() < 8
    assert all(crops[i].std() > 10 for i in ok.crop_index)
    # byte-identical with two worker processes
    out2 = tmp_path / "out2"
    prepare_dataset("affectnet", {"format": "affectnet_csv", "path": str(root)}, pre, out2 / "items.parquet",
                    out2 / "crops.npy", {"rule": "test"}, workers=2)
    for f in ("items.parquet", "crops.npy"):
        assert (out / f).read_bytes() == (out2 / f).read_bytes()


def test_prepare_fer2013_detects_or_falls_back(tiny_corpus, tmp_path, pre):
    gt, lm = _gt(tiny_corpus, "fer2013")
    anchors = np.stack([anchor_points(t) for t in lm]) / 48
    assert np.abs(anchors.mean(0) - FER_ANCHORS).max() < 0.03             # the fallback's typical positions
    rows = list(csv.reader((tiny_corpus / "fer2013" / "fer2013.csv").read_text().splitlines()))
    rows[1][1] = " ".join(["128"] * 2304)                                 # a flat image: no face to find
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    out = tmp_path / "out"
    counts = prepare_dataset("fer2013", {"format": "fer2013_csv", "path": str(path)}, pre, out / "items.parquet",
                             out / "crops.npy", {"rule": "test"})
    items = pq.read_table(out / "items.parquet").to_pandas()
    assert items.status[0] == "fallback_alignment" and "no face found" in items.error[0]
    assert counts["ok"] + counts["fallback_alignment"] == len(gt) and (items.crop_index >= 0).all()
    assert counts["fallback_alignment"] / len(gt) < 0.15
    fixed = similarity(FER_ANCHORS * 48, TEMPLATE * S)
    assert np.allclose(np.reshape(items["transform"][0], (2, 3)), fixed, atol=1e-4)
    ok = items[items.status == "ok"]
    err = _anchor_error(ok, lm[ok.csv_row.to_numpy()])
    assert np.median(err) < 4 and np.mean(err) < 5


def test_prepare_lfw_crops_and_pairs(tiny_corpus, tmp_path, pre):
    out = tmp_path / "out"
    counts = prepare_dataset("lfw", {"data_home": str(tiny_corpus / "lfw"), "min_faces_per_person": 4}, pre,
                             out / "items.parquet", out / "crops.npy", {"rule": "test"})
    items = pq.read_table(out / "items.parquet").to_pandas()
    pairs = pq.read_table(out / "pairs.parquet").to_pandas()
    assert counts["ok"] >= 0.95 * len(items)
    assert (items.item_id.to_numpy()[pairs.row_b] == pairs.item_b).all() and pairs.fold.nunique() == 10
    gt, lm = _gt(tiny_corpus, "lfw")
    key = {Path(p).stem: i for i, p in enumerate(gt.path)}
    ok = items[(items.status == "ok") & (items.role == "pairs")]
    err = _anchor_error(ok, lm[[key[k] for k in ok.item_id]])
    assert np.mean(err) < 4 and err.max() < 8
    assert (ok.n_faces == 1).all()
