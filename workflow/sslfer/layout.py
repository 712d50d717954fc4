"""Artifact path conventions shared by the stages (the paths README.md lists)."""

from __future__ import annotations

import re
from pathlib import Path


def shard_of(path: str | Path) -> int:
    """The shard number in a ``…/shard=NNNNN/…`` path."""
    m = re.search(r"shard=(\d+)", str(path))
    if not m:
        raise ValueError(f"{path}: not inside a shard=NNNNN directory")
    return int(m.group(1))
