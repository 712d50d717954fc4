"""Crop arrays on disk: ``(n, size, size, 3)`` uint8 ``.npy`` files, written atomically through a memory map,
and read back in file order (:func:`take_sorted`).

Disk space is a message, never a crash: the bytes a file needs are checked against the free space of its
filesystem before it is allocated, and its blocks are allocated up front (``posix_fallocate``), so a
write into the map can never hit a full disk (which would kill the process with SIGBUS). Temporary
files of jobs that died without cleaning up are removed by :func:`sslfer.files.remove_stale_temps`.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from .files import atomic_path, remove_stale_temps

log = logging.getLogger(__name__)

#: Room left for the ``.npy`` header when checking free space.
HEADER_BYTES = 4096


def take_sorted(array: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``array[rows]`` read in ascending row order (a memory-mapped array then reads forward through the file),
    returned in the order of ``rows``."""
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows),) + array.shape[1:], array.dtype)
    out[order] = array[rows[order]]
    return out


class DiskSpaceError(OSError):
    """Not enough free space for a file: names the file, the bytes needed and the bytes free."""

    def __init__(self, path: str | Path, needed: int | None, free: int, detail: str = "") -> None:
        need = "" if needed is None else f"{needed} bytes needed ({_human(needed)}), "
        msg = (f"not enough disk space for {path}: {need}{free} bytes free ({_human(free)}) on the filesystem of "
               f"{Path(path).parent}{detail}; free some space or point the results folder at a larger disk")
        super().__init__(errno.ENOSPC, msg)
        self.path, self.needed, self.free = str(path), needed, free

    def __str__(self) -> str:
        return self.strerror


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def free_bytes(folder: str | Path) -> int:
    """Bytes free (for this user) on the filesystem of ``folder``."""
    return shutil.disk_usage(folder).free


def is_disk_full(exc: BaseException) -> bool:
    """True for an ``OSError`` that says the disk (or the quota) is full."""
    return isinstance(exc, OSError) and (exc.errno in (errno.ENOSPC, errno.EDQUOT)
                                         or "No space left on device" in str(exc))


def _allocate(path: Path, final: Path, nbytes: int) -> None:
    """Allocate the blocks of ``path``'s first ``nbytes`` bytes (no sparse file: no SIGBUS on a full disk)."""
    if nbytes <= 0:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskSpaceError(final, nbytes, free_bytes(path.parent), " (allocating the file failed)") from exc
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
        log.warning("%s: cannot preallocate the file (%s); a full disk may then kill the job", path, exc)
    finally:
        os.close(fd)


def make_room(path: Path, data_bytes: int) -> None:
    """Before writing a ``.npy`` of ``data_bytes`` at ``path``: its folder exists, stale temporary files of dead
    jobs there are gone, and the file fits on the disk (else :class:`DiskSpaceError`, nothing written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    needed = data_bytes + HEADER_BYTES
    free = free_bytes(path.parent)
    if needed > free:
        raise DiskSpaceError(path, needed, free)


@contextmanager
def atomic_crops(path: str | Path, n: int, size: int) -> Iterator[np.memmap]:
    """Yield a writable ``(n, size, size, 3)`` uint8 memory map backed by a temporary file beside ``path``.

    When the block ends normally the map is flushed and the file moved onto ``path`` (readers never see a
    half-written array); when it raises, the temporary file is deleted, so a rerun starts clean. Stale
    temporary files of dead jobs in the folder are removed first; a file that does not fit on its disk
    raises :class:`DiskSpaceError` before anything is written.
    """
    path = Path(path)
    make_room(path, n * size * size * 3)
    with atomic_path(path, suffix=".npy") as tmp:
        crops = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        _allocate(tmp, path, os.path.getsize(tmp))
        yield crops
        crops.flush()
