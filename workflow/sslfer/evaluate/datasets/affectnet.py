"""AffectNet readers: the CSV release (``Manually_Annotated_file_lists``) and the ``.npy`` release (``train_set``,
``val_set``); training lists → train, the official validation lists → test."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...parquet import LANDMARKS_TYPE
from .items import IMAGE_SUFFIXES, EvalDataset, Rows, finish, parse_int, path_sources

AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                     "expression", "valence", "arousal")
AFFECTNET_EXCLUDED = {8: "None", 9: "Uncertain", 10: "No-Face"}
AFFECTNET_NOT_ANNOTATED = -2.0


def _va(value: float, name: str) -> float:
    """AffectNet valence/arousal: -2 → NaN; anything else must lie in [-1, 1]."""
    if value == AFFECTNET_NOT_ANNOTATED:
        return math.nan
    if not -1.0 <= value <= 1.0:
        raise ValueError(f"{name} {value} outside [-1, 1]")
    return value


def _affectnet_label(expression: int) -> tuple[str, str | None]:
    if expression in AFFECTNET_EXCLUDED:
        return "excluded_class", f"expression {expression} ({AFFECTNET_EXCLUDED[expression]}) is not a task class"
    if not 0 <= expression <= 7:
        return "malformed_row", f"expression {expression} outside 0–10"
    return "ok", None



def _affectnet_affect_counts(items: pa.Table) -> dict[str, int]:
    ok = pc.equal(items.column("status"), "ok")
    missing = pc.and_(ok, pc.or_(pc.is_nan(items.column("valence")), pc.is_nan(items.column("arousal"))))
    return {"valence_arousal_not_annotated": int(pc.sum(missing).as_py() or 0)}


def _landmarks(text: str) -> np.ndarray | None:
    """AffectNet ``facial_landmarks`` (``x1;y1;…;x68;y68``) → (68, 2); None when empty."""
    if not text.strip():
        return None
    values = [float(v) for v in text.strip().strip(";").split(";")]
    if len(values) != 136:
        raise ValueError(f"facial_landmarks has {len(values)} values, expected 136")
    return np.asarray(values, np.float32).reshape(68, 2)


def _affectnet_csv_row(rows: Rows, root: Path, rec: list[str], where: str, split: str) -> None:
    key = rec[0].strip() if rec else ""
    if len(rec) != len(AFFECTNET_COLUMNS) or not key:
        problem = f"{len(rec)} columns, expected {len(AFFECTNET_COLUMNS)}" if len(rec) != len(AFFECTNET_COLUMNS) \
            else "empty subDirectory_filePath"
        rows.add(key or where, where, split, status="malformed_row", error=f"{where}: {problem}")
        return
    try:
        x, y, w, h = (float(v) for v in rec[1:5])
        expression = parse_int(rec[6])
        valence, arousal = _va(float(rec[7]), "valence"), _va(float(rec[8]), "arousal")
        landmarks = _landmarks(rec[5])
    except ValueError as exc:
        rows.add(key, where, split, status="malformed_row", error=f"{where}: {exc}")
        return
    status, error = _affectnet_label(expression)
    path = root / "Manually_Annotated_Images" / key
    if status == "ok" and not path.is_file():
        status, error = "missing_image", f"image {path} not found"
    rows.add(key, where, split, str(path), expression if status != "malformed_row" else -1, valence, arousal,
             status=status, error=None if error is None else f"{where}: {error}",
             bbox=[x, y, x + w, y + h] if w > 0 and h > 0 else None, landmarks=landmarks)


def read_affectnet_csv(root: str | Path) -> EvalDataset:
    """AffectNet's original release: ``Manually_Annotated_file_lists/{training,validation}.csv`` + images
    under ``Manually_Annotated_Images/``. A header row is detected and skipped (the real ``validation.csv``
    has none); columns are otherwise taken in the release's order (:data:`AFFECTNET_COLUMNS`)."""
    root = Path(root)
    rows = Rows({"bbox": pa.list_(pa.float32(), 4), "landmarks": LANDMARKS_TYPE})
    for fname, split in (("training.csv", "train"), ("validation.csv", "test")):
        with open(root / "Manually_Annotated_file_lists" / fname, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for rec in reader:
                if reader.line_num == 1 and rec and rec[0].strip() == AFFECTNET_COLUMNS[0]:
                    continue                                       # the header row
                if rec:
                    _affectnet_csv_row(rows, root, rec, f"{fname} line {reader.line_num}", split)
    items = rows.table()
    return finish(EvalDataset("affectnet", items, path_sources(items), counts=_affectnet_affect_counts(items)))


def _annotation(ann_dir: Path, n: str, kind: str, size: int) -> np.ndarray:
    """``<n>_<kind>.npy`` as ``size`` floats (the release stores some as strings); errors name the file."""
    path = ann_dir / f"{n}_{kind}.npy"
    try:
        values = np.asarray(np.load(path, allow_pickle=False)).astype(np.float64).reshape(-1)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
    if values.size != size:
        raise ValueError(f"{path.name}: {values.size} values, expected {size}")
    return values


def _sort_key(stem: str) -> tuple:
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def read_affectnet_npy(root: str | Path) -> EvalDataset:
    """AffectNet's aligned .npy release: ``{train_set,val_set}/images/<n>.jpg`` and
    ``…/annotations/<n>_{exp,val,aro,lnd}.npy`` (scalars may be stored as strings, as in the release);
    items in numeric order of ``n``."""
    root = Path(root)
    rows = Rows({"bbox": pa.list_(pa.float32(), 4), "landmarks": LANDMARKS_TYPE})
    for set_dir, split in (("train_set", "train"), ("val_set", "test")):
        img_dir, ann_dir = root / set_dir / "images", root / set_dir / "annotations"
        images = {p.stem: p for p in (img_dir.iterdir() if img_dir.is_dir() else ())
                  if p.suffix.lower() in IMAGE_SUFFIXES}
        annotated = {p.name[:-len("_exp.npy")] for p in ann_dir.glob("*_exp.npy")} if ann_dir.is_dir() else set()
        for n in sorted(set(images) | annotated, key=_sort_key):
            item_id, where = f"{set_dir}/{n}", f"{set_dir}/annotations/{n}_exp.npy"
            if n not in annotated:
                rows.add(item_id, where, split, str(images[n]), status="missing_annotation",
                         error=f"{set_dir}/images/{images[n].name}: no annotations/{n}_exp.npy")
                continue
            try:
                expression = parse_int(_annotation(ann_dir, n, "exp", 1)[0])
                valence = _va(_annotation(ann_dir, n, "val", 1)[0], "valence")
                arousal = _va(_annotation(ann_dir, n, "aro", 1)[0], "arousal")
                lnd = _annotation(ann_dir, n, "lnd", 136)
            except ValueError as exc:
                rows.add(item_id, where, split, status="malformed_row", error=f"{set_dir}/annotations/{exc}")
                continue
            status, error = _affectnet_label(expression)
            path = images.get(n, img_dir / f"{n}.jpg")
            if status == "ok" and n not in images:
                status, error = "missing_image", f"image {path} not found"
            rows.add(item_id, where, split, str(path), expression if status != "malformed_row" else -1, valence,
                     arousal, status=status, error=None if error is None else f"{where}: {error}",
                     landmarks=lnd.reshape(68, 2).astype(np.float32))
    items = rows.table()
    return finish(EvalDataset("affectnet", items, path_sources(items), counts=_affectnet_affect_counts(items)))
