"""Readers of the evaluation datasets in their real on-disk layouts (``docs/datasets.md``).

Every reader returns an :class:`EvalDataset`: one row per item, every item accounted for, and a generator
of the items' pixels. Common columns:

==========  ================================================================================================
item_id     stable, unique string (AffectNet: ``subDirectory_filePath`` or ``train_set/<n>``; FER2013:
            ``fer2013/<row>`` or ``train/<class>/<file>``; LFW: ``<Name>_<nnnn>`` / ``people/<Name>/<k>``)
split       ``train`` / ``val`` / ``test`` (null for LFW: its protocols make their own folds and splits)
path        the image file (null where pixels come from a table: FER2013's CSV, LFW's people loader)
label       the dataset's own class index (AffectNet 0–7, FER2013 0–6); -1 where there is none
valence     float, NaN where there is none (AffectNet's -2 "not annotated" becomes NaN and is counted)
arousal     as valence
identity    the LFW person ("George W Bush", scikit-learn's spelling); null otherwise
status      ``ok`` or why the item cannot be used (below); ``error`` names the file, line or path
==========  ================================================================================================

Statuses set here: ``malformed_row`` (wrong column count, unparsable number, landmarks that are not 136
values, label outside the dataset's range), ``excluded_class`` (AffectNet 8 None, 9 Uncertain, 10 No-Face),
``missing_image``, ``missing_annotation`` (AffectNet .npy release: an image without its ``_exp.npy``),
``unknown_class`` (FER2013 folder name), ``duplicate_item`` (a second row for the same item), and
``decode_error`` (LFW: scikit-learn's loader failed on a chunk). Nothing raises on a bad row.

Splits: AffectNet ``training.csv`` / ``train_set`` → train, ``validation.csv`` / ``val_set`` → test (the
official validation set is the usual test set; model selection uses a split of train). FER2013:
``Training`` → train, ``PrivateTest`` → val, ``PublicTest`` → test, as the reference (usef-kh/fer) used
them; folder variant ``train/`` → train, ``test/`` → test. Nothing here selects on a test split.

Extras: AffectNet ``bbox`` (x1, y1, x2, y2 from ``face_x, face_y, face_width, face_height``; null in the
.npy release or for an empty box) and ``landmarks`` (the dataset's 68 points, image pixels; null when
absent); FER2013 CSV ``csv_row`` (0-based data row, the row of the pixels); LFW ``role`` (``pairs``: an
image of ``pairs.txt``, ``people``: an image of the identification set) and the pairs table.

LFW is read with scikit-learn's own loaders (``fetch_lfw_pairs(subset="10_folds")`` and
``fetch_lfw_people``, ``download_if_missing=False``, full 250×250 colour images: ``slice_=None``,
``resize=1.0``; our detector and aligner then frame the face like the pretraining crops). They return
float32 arrays of the whole set (9 GB for the 12,000 pair images of the real ``pairs.txt``) and cache
them, zlib-compressed, under ``<data_home>/lfw_home/joblib`` (about 65 ms per image, most of the loading
time). So each call gets a throw-away ``data_home`` in a scratch folder whose ``lfw_home`` links to the
real person folders and holds one chunk of pair lines or people (memory: ``LFW_CHUNK_IMAGES`` × 0.75 MB),
and the loaders' joblib cache is switched off for the call (``joblib.Memory(location=None)``, the
documented no-cache memory): the user's data folder is never written to (it may be read-only), and
nothing is compressed only to be thrown away. Pair images are deduplicated by (person, image number) as
named in ``pairs.txt``;
``pairs`` (one row per line of ``pairs.txt``) keeps the fold structure: ``pairs.txt`` starts with
``<folds> <n>`` and holds, per fold, n same-person then n different-person lines. scikit-learn's people
loader returns no file names (it shuffles its rows with a fixed seed), so people items are named by the
person and the image's rank among that person's rows, which is stable for the same data.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..parquet import LANDMARKS_TYPE, landmarks_array

log = logging.getLogger(__name__)

AFFECTNET_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                     "expression", "valence", "arousal")
AFFECTNET_EXCLUDED = {8: "None", 9: "Uncertain", 10: "No-Face"}
AFFECTNET_NOT_ANNOTATED = -2.0
FER2013_FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # index = emotion code
FER2013_USAGE = {"Training": "train", "PrivateTest": "val", "PublicTest": "test"}
FER2013_SIDE = 48
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LFW_PAIR_FILES = ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt")
LFW_CHUNK_IMAGES = 256

#: ``(row, source, error)``: the item's table row and its pixels (RGB uint8 array) or image path; ``source``
#: is None when the pixels could not be had, and ``error`` says why.
Source = tuple[int, "np.ndarray | str | None", "str | None"]


@dataclass
class EvalDataset:
    """An evaluation dataset: its item table, its pixels and (LFW) its pairs."""

    name: str
    items: pa.Table
    sources: Callable[[], Iterator[Source]]     # one Source per item with status ok, in any order
    pairs: pa.Table | None = None
    counts: dict[str, int] = field(default_factory=dict)   # reader-level counts beyond the statuses


class _Rows:
    """Column accumulator for an item table; makes ``item_id`` unique (later repeats: ``duplicate_item``)."""

    COMMON = ("item_id", "split", "path", "label", "valence", "arousal", "identity", "status", "error")

    def __init__(self, extras: dict[str, pa.DataType]) -> None:
        self.extras = extras
        self.cols: dict[str, list] = {k: [] for k in (*self.COMMON, *extras)}
        self.first: dict[str, str] = {}

    def add(self, item_id: str, where: str, split: str | None = None, path: str | None = None, label: int = -1,
            valence: float = math.nan, arousal: float = math.nan, identity: str | None = None,
            status: str = "ok", error: str | None = None, **extra: Any) -> int:
        """Append one item (``where`` names its source line/file for messages); returns its row. A repeated
        ``item_id`` gets ``#<where>`` appended, and status ``duplicate_item`` unless it already has a reason."""
        if item_id in self.first:
            if status == "ok":
                status, error = "duplicate_item", f"{where}: {item_id} already listed at {self.first[item_id]}"
            item_id = f"{item_id}#{where}"
        self.first[item_id] = where
        row = dict(item_id=item_id, split=split, path=path, label=label, valence=valence, arousal=arousal,
                   identity=identity, status=status, error=error)
        for k, v in row.items():
            self.cols[k].append(v)
        for k in self.extras:
            self.cols[k].append(extra.get(k))
        return len(self.cols["item_id"]) - 1

    def table(self) -> pa.Table:
        c = self.cols
        arrays = {
            "item_id": pa.array(c["item_id"], pa.string()),
            "split": pa.array(c["split"], pa.string()),
            "path": pa.array(c["path"], pa.string()),
            "label": pa.array(c["label"], pa.int64()),
            "valence": pa.array(c["valence"], pa.float32()),
            "arousal": pa.array(c["arousal"], pa.float32()),
            "identity": pa.array(c["identity"], pa.string()),
            "status": pa.array(c["status"], pa.string()),
            "error": pa.array(c["error"], pa.string()),
        }
        for k, typ in self.extras.items():
            arrays[k] = landmark_column(c[k]) if typ == LANDMARKS_TYPE else pa.array(c[k], typ)
        return pa.table(arrays)


def landmark_column(points: list[np.ndarray | None]) -> pa.Array:
    """Landmark column from per-row ``(68, 2)`` arrays, null where None."""
    valid = [p is not None for p in points]
    full = np.stack([p if p is not None else np.zeros((68, 2), np.float32) for p in points]) if points \
        else np.zeros((0, 68, 2), np.float32)
    arr = landmarks_array(full)
    return pc.if_else(pa.array(valid, pa.bool_()), arr, pa.nulls(len(points), LANDMARKS_TYPE)) if points else arr


def _path_sources(items: pa.Table) -> Callable[[], Iterator[Source]]:
    paths, status = items.column("path").to_pylist(), items.column("status").to_pylist()
    return lambda: ((r, p, None) for r, (p, s) in enumerate(zip(paths, status)) if s == "ok")


def _int(text: str | float) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not an integer")
    return int(value)


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


# --------------------------------------------------------------------------------------------------
# AffectNet


def _affectnet_affect_counts(items: pa.Table) -> dict[str, int]:
    ok = pc.equal(items.column("status"), "ok")
    missing = pc.and_(ok, pc.or_(pc.is_nan(items.column("valence")), pc.is_nan(items.column("arousal"))))
    return {"valence_arousal_not_annotated": int(pc.sum(missing).as_py() or 0)}


def status_counts(items: pa.Table) -> dict[str, int]:
    """``{status: count}`` of an item table, sorted by status."""
    return dict(sorted(Counter(items.column("status").to_pylist()).items()))


def _finish(ds: EvalDataset) -> EvalDataset:
    log.info("%s: %d items, status %s%s", ds.name, ds.items.num_rows, status_counts(ds.items),
             f", {ds.counts}" if ds.counts else "")
    return ds


def _landmarks(text: str) -> np.ndarray | None:
    """AffectNet ``facial_landmarks`` (``x1;y1;…;x68;y68``) → (68, 2); None when empty."""
    if not text.strip():
        return None
    values = [float(v) for v in text.strip().strip(";").split(";")]
    if len(values) != 136:
        raise ValueError(f"facial_landmarks has {len(values)} values, expected 136")
    return np.asarray(values, np.float32).reshape(68, 2)


def _affectnet_csv_row(rows: _Rows, root: Path, rec: list[str], where: str, split: str) -> None:
    key = rec[0].strip() if rec else ""
    if len(rec) != len(AFFECTNET_COLUMNS) or not key:
        problem = f"{len(rec)} columns, expected {len(AFFECTNET_COLUMNS)}" if len(rec) != len(AFFECTNET_COLUMNS) \
            else "empty subDirectory_filePath"
        rows.add(key or where, where, split, status="malformed_row", error=f"{where}: {problem}")
        return
    try:
        x, y, w, h = (float(v) for v in rec[1:5])
        expression = _int(rec[6])
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
    rows = _Rows({"bbox": pa.list_(pa.float32(), 4), "landmarks": LANDMARKS_TYPE})
    for fname, split in (("training.csv", "train"), ("validation.csv", "test")):
        with open(root / "Manually_Annotated_file_lists" / fname, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for rec in reader:
                if reader.line_num == 1 and rec and rec[0].strip() == AFFECTNET_COLUMNS[0]:
                    continue                                       # the header row
                if rec:
                    _affectnet_csv_row(rows, root, rec, f"{fname} line {reader.line_num}", split)
    items = rows.table()
    return _finish(EvalDataset("affectnet", items, _path_sources(items), counts=_affectnet_affect_counts(items)))


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
    rows = _Rows({"bbox": pa.list_(pa.float32(), 4), "landmarks": LANDMARKS_TYPE})
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
                expression = _int(_annotation(ann_dir, n, "exp", 1)[0])
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
    return _finish(EvalDataset("affectnet", items, _path_sources(items), counts=_affectnet_affect_counts(items)))


# --------------------------------------------------------------------------------------------------
# FER2013


def read_fer2013_csv(path: str | Path) -> EvalDataset:
    """``fer2013.csv`` (``emotion, pixels, Usage``; columns found by the header): one item per data row,
    its 48×48 grey pixels kept in memory (35,887 rows: 83 MB) and served as RGB."""
    path = Path(path)
    rows = _Rows({"csv_row": pa.int64()})
    pixels: list[np.ndarray] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in ("emotion", "pixels", "Usage") if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks {missing} (expected emotion,pixels,Usage)")
        ci, cp, cu = (header.index(c) for c in ("emotion", "pixels", "Usage"))
        for k, rec in enumerate(reader):
            where = f"{path.name} line {reader.line_num}"
            grey = np.zeros((FER2013_SIDE, FER2013_SIDE), np.uint8)
            status, error, label, split = "ok", None, -1, None
            try:
                if len(rec) != len(header):
                    raise ValueError(f"{len(rec)} columns, expected {len(header)}")
                label = _int(rec[ci])
                if not 0 <= label < len(FER2013_FOLDERS):
                    raise ValueError(f"emotion {label} outside 0–{len(FER2013_FOLDERS) - 1}")
                split = FER2013_USAGE.get(rec[cu].strip())
                if split is None:
                    raise ValueError(f"Usage {rec[cu]!r} not one of {', '.join(FER2013_USAGE)}")
                values = np.array(rec[cp].split(), np.int64)
                if values.size != FER2013_SIDE ** 2:
                    raise ValueError(f"{values.size} pixels, expected {FER2013_SIDE ** 2}")
                if values.min() < 0 or values.max() > 255:
                    raise ValueError("pixel values outside 0–255")
                grey = values.astype(np.uint8).reshape(FER2013_SIDE, FER2013_SIDE)
            except ValueError as exc:
                status, error, label = "malformed_row", f"{where}: {exc}", -1
            rows.add(f"fer2013/{k:05d}", where, split, label=label, status=status, error=error, csv_row=k)
            pixels.append(grey)
    items = rows.table()
    grey_all = np.stack(pixels) if pixels else np.zeros((0, FER2013_SIDE, FER2013_SIDE), np.uint8)
    ok = items.column("status").to_pylist()

    def sources() -> Iterator[Source]:
        for r, s in enumerate(ok):
            if s == "ok":
                yield r, np.repeat(grey_all[r][:, :, None], 3, axis=2), None

    return _finish(EvalDataset("fer2013", items, sources))


def read_fer2013_folders(root: str | Path) -> EvalDataset:
    """The folder variant: ``{train,test}/<class>/*.jpg`` with class folders ``angry … neutral``
    (case-insensitive); files in name order. A folder with another name gives ``unknown_class`` items."""
    root = Path(root)
    rows = _Rows({})
    for sub in ("train", "test"):
        base = root / sub
        if not base.is_dir():
            raise FileNotFoundError(f"config datasets.fer2013.path: {base} not found (fer2013_folders expects "
                                    f"train/ and test/ with one folder per class)")
        for cls_dir in sorted(d for d in base.iterdir() if d.is_dir()):
            name = cls_dir.name.lower()
            label = FER2013_FOLDERS.index(name) if name in FER2013_FOLDERS else -1
            for f in sorted(p for p in cls_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                rows.add(f"{sub}/{cls_dir.name}/{f.name}", str(f), sub, str(f), label,
                         status="ok" if label >= 0 else "unknown_class",
                         error=None if label >= 0 else f"{f}: class folder {cls_dir.name!r} is not one of "
                                                       f"{', '.join(FER2013_FOLDERS)}")
    items = rows.table()
    return _finish(EvalDataset("fer2013", items, _path_sources(items)))


# --------------------------------------------------------------------------------------------------
# LFW


@dataclass(frozen=True)
class PairLine:
    """One line of an LFW pair file: its line number, fold, same-person flag and the two (name, number)."""

    line: int
    fold: int
    same: bool
    a: tuple[str, int]
    b: tuple[str, int]

    def text(self) -> str:
        """The line, tab-separated as scikit-learn parses it."""
        if self.same:
            return f"{self.a[0]}\t{self.a[1]}\t{self.b[1]}"
        return f"{self.a[0]}\t{self.a[1]}\t{self.b[0]}\t{self.b[1]}"


def parse_lfw_pairs(path: str | Path) -> list[PairLine]:
    """Lines of ``pairs.txt`` (header ``<folds> <n>``, then per fold n same + n different lines) or of a
    View-1 file (header ``<n>``: one fold). A file that contradicts its header raises (the folds are lost)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    head = lines[0].split() if lines else []
    if len(head) not in (1, 2) or not all(h.isdigit() for h in head):
        raise ValueError(f"{path} line 1: expected '<folds> <pairs per fold>' or '<pairs>', got {lines[:1]}")
    folds, n = (1, int(head[0])) if len(head) == 1 else (int(head[0]), int(head[1]))
    body = [(i + 2, ln.split()) for i, ln in enumerate(lines[1:]) if ln.strip()]
    if len(body) != folds * 2 * n:
        raise ValueError(f"{path}: header says {folds} fold(s) of {n} + {n} pairs, found {len(body)} pair lines")
    out = []
    for k, (ln, f) in enumerate(body):
        try:
            if len(f) == 3:
                out.append(PairLine(ln, k // (2 * n), True, (f[0], int(f[1])), (f[0], int(f[2]))))
            elif len(f) == 4:
                out.append(PairLine(ln, k // (2 * n), False, (f[0], int(f[1])), (f[2], int(f[3]))))
            else:
                raise ValueError(f"{len(f)} fields, expected 3 or 4")
        except ValueError as exc:
            raise ValueError(f"{path} line {ln}: {exc}") from exc
    return out


def _no_cache(*_args: Any, **_kwargs: Any) -> Any:
    """Stand-in for the ``joblib.Memory`` that scikit-learn's LFW loaders build: a memory that caches nothing."""
    import joblib

    return joblib.Memory(location=None, verbose=0)


@contextlib.contextmanager
def _sklearn_home(funneled: Path, people: list[str], pair_lines: list[str],
                  scratch: str | Path | None) -> Iterator[str]:
    """A throw-away ``data_home`` whose ``lfw_home`` links to ``people``'s folders and holds ``pair_lines``
    as ``pairs.txt``; the loaders' joblib cache is off meanwhile (kept if scikit-learn stops naming it
    ``Memory``, which costs time only)."""
    from sklearn.datasets import _lfw

    no_cache = mock.patch.object(_lfw, "Memory", _no_cache) if hasattr(_lfw, "Memory") else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="lfw-stage-", dir=scratch) as tmp, no_cache:
        home = Path(tmp) / "lfw_home"
        (home / "lfw_funneled").mkdir(parents=True)
        for name in people:
            os.symlink((funneled / name).absolute(), home / "lfw_funneled" / name, target_is_directory=True)
        for fname in LFW_PAIR_FILES:
            (home / fname).write_text("".join(f"{ln}\n" for ln in pair_lines) if fname == "pairs.txt" else "")
        yield tmp


def _uint8(img: np.ndarray) -> np.ndarray:
    """scikit-learn's float image (values/255) → contiguous uint8 RGB."""
    return np.ascontiguousarray(np.clip(np.rint(np.asarray(img) * 255.0), 0, 255).astype(np.uint8))


def _chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _people_chunks(people: list[str], counts: dict[str, int], max_images: int) -> Iterator[list[str]]:
    """People in order, grouped so that a group holds at most ``max_images`` images (or one person)."""
    group: list[str] = []
    for name in people:
        if group and sum(counts[p] for p in group) + counts[name] > max_images:
            yield group
            group = []
        group.append(name)
    if group:
        yield group


def read_lfw(data_home: str | Path, min_faces_per_person: int = 4, scratch: str | Path | None = None,
             chunk_images: int = LFW_CHUNK_IMAGES) -> EvalDataset:
    """LFW through scikit-learn's loaders: the unique images of ``pairs.txt`` (role ``pairs``) with the
    pairs table, and every image of the people with at least ``min_faces_per_person`` images (role
    ``people``). ``scratch`` holds the throw-away ``data_home`` of each loader call (default: system temp)."""
    from sklearn.datasets import fetch_lfw_pairs, fetch_lfw_people

    lfw_home = Path(data_home) / "lfw_home"
    funneled = lfw_home / "lfw_funneled"
    if not funneled.is_dir() or not (lfw_home / "pairs.txt").is_file():
        raise FileNotFoundError(f"config datasets.lfw.data_home: {lfw_home} lacks lfw_funneled/ or pairs.txt "
                                f"(the layout scikit-learn's fetch_lfw_pairs/fetch_lfw_people read)")
    files = {name: sorted(os.listdir(funneled / name)) for name in sorted(os.listdir(funneled))
             if (funneled / name).is_dir()}                  # scikit-learn's own listing rule
    pair_lines = parse_lfw_pairs(lfw_home / "pairs.txt")
    rows = _Rows({"role": pa.string()})
    index: dict[tuple[str, int], int] = {}
    for pl in pair_lines:
        for name, num in (pl.a, pl.b):
            if (name, num) in index:
                continue
            found = name in files and 1 <= num <= len(files[name])
            index[(name, num)] = rows.add(
                f"{name}_{num:04d}", f"pairs.txt line {pl.line}", path=str(funneled / name / files[name][num - 1])
                if found else None, identity=name.replace("_", " "), status="ok" if found else "missing_image",
                error=None if found else f"pairs.txt line {pl.line}: {funneled / name} has no image number {num}",
                role="pairs")
    people = [name for name, f in files.items() if len(f) >= max(min_faces_per_person, 1)]
    people_rows = {name: [rows.add(f"people/{name}/{k:04d}", f"lfw_funneled/{name}", identity=name.replace("_", " "),
                                   role="people") for k in range(len(files[name]))] for name in people}
    items = rows.table()
    status, ids = items.column("status").to_pylist(), items.column("item_id").to_pylist()
    pairs = pa.table({
        "pair": pa.array(np.arange(len(pair_lines)), pa.int64()),
        "line": pa.array([pl.line for pl in pair_lines], pa.int64()),
        "fold": pa.array([pl.fold for pl in pair_lines], pa.int64()),
        "same": pa.array([pl.same for pl in pair_lines], pa.bool_()),
        "item_a": pa.array([ids[index[pl.a]] for pl in pair_lines], pa.string()),
        "item_b": pa.array([ids[index[pl.b]] for pl in pair_lines], pa.string()),
        "row_a": pa.array([index[pl.a] for pl in pair_lines], pa.int64()),
        "row_b": pa.array([index[pl.b] for pl in pair_lines], pa.int64()),
    })
    usable = [pl for pl in pair_lines if status[index[pl.a]] == "ok" and status[index[pl.b]] == "ok"]
    loader = dict(funneled=True, resize=1.0, color=True, slice_=None, download_if_missing=False)

    def sources() -> Iterator[Source]:
        done: set[int] = set()
        for chunk in _chunks(usable, max(chunk_images // 2, 1)):
            names = sorted({pl.a[0] for pl in chunk} | {pl.b[0] for pl in chunk})
            try:
                with _sklearn_home(funneled, names, [pl.text() for pl in chunk], scratch) as home:
                    bunch = fetch_lfw_pairs(subset="10_folds", data_home=home, **loader)
            except (OSError, ValueError) as exc:
                why = f"pairs.txt lines {chunk[0].line}–{chunk[-1].line}: scikit-learn's fetch_lfw_pairs failed: {exc}"
                for r in dict.fromkeys(index[k] for pl in chunk for k in (pl.a, pl.b)):
                    if r not in done:
                        done.add(r)
                        yield r, None, why
                continue
            if bunch.target.tolist() != [int(pl.same) for pl in chunk]:
                raise RuntimeError(f"fetch_lfw_pairs returned targets that contradict pairs.txt lines "
                                   f"{chunk[0].line}–{chunk[-1].line}")
            for k, pl in enumerate(chunk):
                for side, key in enumerate((pl.a, pl.b)):
                    r = index[key]
                    if r not in done:
                        done.add(r)
                        yield r, _uint8(bunch.pairs[k, side]), None
        folder = {name.replace("_", " "): name for name in people}
        for group in _people_chunks(people, {p: len(files[p]) for p in people}, chunk_images):
            try:
                with _sklearn_home(funneled, group, [], scratch) as home:
                    bunch = fetch_lfw_people(data_home=home, min_faces_per_person=min_faces_per_person, **loader)
            except (OSError, ValueError) as exc:
                why = f"people {group[0]} … {group[-1]}: scikit-learn's fetch_lfw_people failed: {exc}"
                for name in group:
                    yield from ((r, None, why) for r in people_rows[name])
                continue
            rank: Counter = Counter()
            for img, t in zip(bunch.images, bunch.target):
                name = folder[str(bunch.target_names[t])]
                yield people_rows[name][rank[name]], _uint8(img), None
                rank[name] += 1
            if any(rank[name] != len(people_rows[name]) for name in group):
                raise RuntimeError(f"fetch_lfw_people returned other image counts than lfw_funneled/ lists for "
                                   f"people {group[0]} … {group[-1]}")

    return _finish(EvalDataset("lfw", items, sources, pairs=pairs,
                               counts={"pairs": len(pair_lines), "pairs_usable": len(usable),
                                       "folds": len({pl.fold for pl in pair_lines}), "people": len(people)}))


# --------------------------------------------------------------------------------------------------


def read_dataset(name: str, cfg: dict, scratch: str | Path | None = None) -> EvalDataset:
    """The reader for config ``datasets.<name>`` (``format`` chooses the release where there are several)."""
    fmt = cfg.get("format")
    if name == "affectnet":
        readers = {"affectnet_csv": read_affectnet_csv, "affectnet_npy": read_affectnet_npy}
        fmt = fmt or "affectnet_csv"
    elif name == "fer2013":
        readers = {"fer2013_csv": read_fer2013_csv, "fer2013_folders": read_fer2013_folders}
        fmt = fmt or "fer2013_csv"
    elif name == "lfw":
        return read_lfw(cfg["data_home"], cfg.get("min_faces_per_person", 4), scratch)
    else:
        raise ValueError(f"unknown evaluation dataset {name!r} (affectnet, fer2013, lfw)")
    if fmt not in readers:
        raise ValueError(f"config datasets.{name}.format: {fmt!r} is not one of {', '.join(readers)}")
    return readers[fmt](cfg["path"])
