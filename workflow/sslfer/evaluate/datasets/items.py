"""An evaluation dataset as the readers return it: the item table with its common columns, every item accounted for
(:class:`Rows`), and a generator of the items' pixels (:class:`EvalDataset`)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...parquet import LANDMARKS_TYPE, landmarks_array

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

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


class Rows:
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


def path_sources(items: pa.Table) -> Callable[[], Iterator[Source]]:
    paths, status = items.column("path").to_pylist(), items.column("status").to_pylist()
    return lambda: ((r, p, None) for r, (p, s) in enumerate(zip(paths, status)) if s == "ok")


def parse_int(text: str | float) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not an integer")
    return int(value)


def status_counts(items: pa.Table) -> dict[str, int]:
    """``{status: count}`` of an item table, sorted by status."""
    return dict(sorted(Counter(items.column("status").to_pylist()).items()))


def finish(ds: EvalDataset) -> EvalDataset:
    log.info("%s: %d items, status %s%s", ds.name, ds.items.num_rows, status_counts(ds.items),
             f", {ds.counts}" if ds.counts else "")
    return ds
