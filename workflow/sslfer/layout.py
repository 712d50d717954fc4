"""Artifact path conventions shared by the stages (the paths README.md lists): a corpus's per-shard artifacts live
in ``<root>/shard=NNNNN/`` folders (``root``: ``results/<corpus>/frames``, ``…/swaps``, ``…/descriptors``), the
shard number zero-padded to five digits. This module builds those paths and parses them back."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path


def shard_name(shard: int) -> str:
    """The zero-padded shard number of a path (``00003``)."""
    return f"{shard:05d}"


def shard_dir(root: str | Path, shard: int) -> Path:
    """The folder of shard ``shard`` under ``root`` (``<root>/shard=NNNNN``)."""
    return Path(root) / f"shard={shard_name(shard)}"


def shard_of(path: str | Path) -> int:
    """The shard number in a ``…/shard=NNNNN/…`` path."""
    m = re.search(r"shard=(\d+)", str(path))
    if not m:
        raise ValueError(f"{path}: not inside a shard=NNNNN directory")
    return int(m.group(1))


def shards_root(files: Iterable[str | Path]) -> Path:
    """The one ``root`` that holds the ``<root>/shard=NNNNN/<file>`` files ``files`` (a rule's per-shard inputs)."""
    roots = {Path(f).parents[1] for f in files}
    if len(roots) != 1:
        raise ValueError(f"per-shard files under {len(roots)} folders, expected one: {sorted(map(str, roots))}")
    return roots.pop()


def shard_ids(manifest: str | Path) -> list[str]:
    """The zero-padded numbers of the shards present in a corpus's manifest (``videos.parquet``)."""
    import pyarrow.parquet as pq

    shards = pq.read_table(manifest, columns=["shard"]).column("shard").to_pylist()
    return [shard_name(s) for s in sorted(set(shards))]
