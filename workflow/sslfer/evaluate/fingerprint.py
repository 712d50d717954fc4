"""What an evaluation result was measured on: a fingerprint of an evaluation set's inputs.

The fingerprint hashes the set's label/list files (AffectNet's CSV lists, ``fer2013.csv``, LFW's pair files),
every item's identity, split, labels and source path (relative to the configured dataset path), and the size
of every source image. It changes when the labels, the list of images or an image file's size changes, and it
does not depend on where the working directory is; it does not read image pixels (too slow for real sets).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa

from ..files import sha256_file

ITEM_COLUMNS = ("item_id", "split", "path", "label", "valence", "arousal", "identity")


def metadata_files(cfg: dict) -> list[Path]:
    """The label/list files of a dataset config (``datasets.<name>``) that exist."""
    fmt = cfg.get("format")
    if "data_home" in cfg:                                            # LFW
        home = Path(cfg["data_home"]) / "lfw_home"
        files = [home / n for n in ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt")]
    elif fmt == "affectnet_csv":
        lists = Path(cfg["path"]) / "Manually_Annotated_file_lists"
        files = [lists / "training.csv", lists / "validation.csv"]
    elif fmt == "fer2013_csv":
        files = [Path(cfg["path"])]
    else:                                   # per-item annotation files: covered by the source-file sizes
        files = []
    return [f for f in files if f.is_file()]


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return path


def dataset_fingerprint(cfg: dict, items: pa.Table) -> dict:
    """``{"path", "input_fingerprint", "metadata_files", "source_files"}`` of an evaluation set's item table."""
    root = Path(cfg.get("path", cfg.get("data_home"))).resolve()
    h = hashlib.sha256()
    meta = metadata_files(cfg)
    for f in meta:
        h.update(f"{_relative(str(f), root)}={sha256_file(f)}\n".encode())
    cols = {c: items.column(c).to_pylist() for c in ITEM_COLUMNS if c in items.column_names}
    paths = cols.get("path", [])
    cols["path"] = [None if p is None else _relative(p, root) for p in paths]
    cols["size"] = [None if p is None else (os.stat(p).st_size if os.path.exists(p) else -1) for p in paths]
    h.update(json.dumps(cols, sort_keys=True, default=str).encode())
    return {"path": str(cfg.get("path", cfg.get("data_home"))), "input_fingerprint": h.hexdigest()[:16],
            "metadata_files": [_relative(str(f), root) for f in meta],
            "source_files": sum(p is not None for p in paths)}
