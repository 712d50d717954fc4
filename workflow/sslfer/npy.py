"""Crop arrays on disk: ``(n, size, size, 3)`` uint8 ``.npy`` files, written atomically through a memory map."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap


@contextmanager
def atomic_crops(path: str | Path, n: int, size: int) -> Iterator[np.memmap]:
    """Yield a writable ``(n, size, size, 3)`` uint8 memory map backed by a temporary file beside ``path``.

    When the block ends normally the map is flushed and the file moved onto ``path`` (readers never see a
    half-written array); when it raises, the temporary file is deleted, so a rerun starts clean.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npy")
    try:
        crops = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        yield crops
        crops.flush()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
