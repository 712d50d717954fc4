"""Parquet conventions shared by every artifact: landmark columns, provenance metadata, atomic writes.

Landmarks are stored as ``fixed_size_list<fixed_size_list<float32, 2>, 68>`` (68 points × (x, y), iBUG
order); :func:`landmarks_array` and :func:`landmarks_numpy` convert to and from ``(n, 68, 2)`` arrays.
Every file carries a JSON provenance record under the metadata key ``sslfer`` (:func:`read_provenance`).
Writes are atomic (:func:`sslfer.files.atomic_path`). Nothing time- or host-dependent goes into the file: same inputs → same
bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .files import atomic_path

PROVENANCE_KEY = b"sslfer"
N_LANDMARKS = 68
LANDMARKS_TYPE = pa.list_(pa.list_(pa.float32(), 2), N_LANDMARKS)


def landmarks_array(points: np.ndarray) -> pa.FixedSizeListArray:
    """Arrow column from an ``(n, 68, 2)`` array."""
    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1)
    inner = pa.FixedSizeListArray.from_arrays(pa.array(pts, pa.float32()), 2)
    return pa.FixedSizeListArray.from_arrays(inner, N_LANDMARKS)


def landmarks_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(n, 68, 2)`` float32 array from a landmarks column (null rows become NaN)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], LANDMARKS_TYPE)
    out = np.full((len(column), N_LANDMARKS, 2), np.nan, np.float32)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if valid.any():
        flat = column.filter(pa.array(valid)).flatten().flatten().to_numpy(zero_copy_only=False)
        out[valid] = flat.reshape(-1, N_LANDMARKS, 2)
    return out


def provenance(rule: str, seed: int | None, config: dict[str, Any] | None = None, **extra: Any) -> dict:
    """The provenance record: producing rule, package version, seed, config subset and extras."""
    record = {"rule": rule, "sslfer_version": __version__, "seed": seed, "config": config or {}}
    record.update(extra)
    return record


def write_parquet(table: pa.Table, path: str | os.PathLike, prov: dict[str, Any]) -> Path:
    """Write ``table`` to ``path`` atomically with ``prov`` as JSON metadata; returns the path."""
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(prov, sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance record of a Parquet file written by :func:`write_parquet` (``{}`` if none)."""
    meta = pq.read_schema(path).metadata or {}
    raw = meta.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
