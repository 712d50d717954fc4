"""FER2013 readers: the CSV release (48×48 grey pixels per row) and the folder release (``train/<class>/``,
``test/<class>/``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from .items import IMAGE_SUFFIXES, EvalDataset, Rows, Source, finish, parse_int, path_sources

FER2013_FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # index = emotion code
FER2013_USAGE = {"Training": "train", "PrivateTest": "val", "PublicTest": "test"}
FER2013_SIDE = 48


def read_fer2013_csv(path: str | Path) -> EvalDataset:
    """``fer2013.csv`` (``emotion, pixels, Usage``; columns found by the header): one item per data row,
    its 48×48 grey pixels kept in memory (35,887 rows: 83 MB) and served as RGB."""
    path = Path(path)
    rows = Rows({"csv_row": pa.int64()})
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
                label = parse_int(rec[ci])
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

    return finish(EvalDataset("fer2013", items, sources))


def read_fer2013_folders(root: str | Path) -> EvalDataset:
    """The folder variant: ``{train,test}/<class>/*.jpg`` with class folders ``angry … neutral``
    (case-insensitive); files in name order. A folder with another name gives ``unknown_class`` items."""
    root = Path(root)
    rows = Rows({})
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
    return finish(EvalDataset("fer2013", items, path_sources(items)))
