"""Files on the ground floor: atomic writes, the result-JSON format, content hashes, stale temporary files.

Every artifact is written to a temporary file beside it (``.<name>.tmp-<pid>[<suffix>]``) that is renamed onto
it only when the write has finished (:func:`atomic_path`), so a killed job never leaves a half-written file
that a rerun would trust; a temporary file whose process has died is removed by :func:`remove_stale_temps`.
Nothing here imports more than the standard library, so the config check can use it as well as evaluation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Temporary files of :func:`atomic_path` (``.frames.parquet.tmp-<pid>``, ``.crops.npy.tmp-<pid>.npy``).
TEMP_NAME = re.compile(r"^\..+\.tmp-(\d+)(\.npy)?$")
#: An innermost JSON list of numbers (no strings, lists or objects inside), written on one line.
_FLAT_LIST = re.compile(r"\[([^\[\]{}\"]*)\]")


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", keep_stem: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for the block to write; rename it onto ``path`` when the block
    ends normally, delete it when the block raises.

    ``suffix``: for writers that insist on a file ending. ``keep_stem``: the temporary file is
    ``<stem>.tmp-<pid>`` instead, for writers that record the file's stem inside the file (``torch.save`` names
    its zip archive's folder after it), so that the final file's bytes do not depend on the temporary name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    tmp = path.with_name(f"{path.stem}.tmp-{pid}" if keep_stem else f".{path.name}.tmp-{pid}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _finite(value: Any) -> Any:
    """JSON-safe: NaN/inf → None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """Strict JSON, indented by 2, keys in insertion order, NaN/inf as ``null``, each list of numbers on one line,
    ending in a newline."""
    text = json.dumps(_finite(value), indent=2, sort_keys=False, allow_nan=False)
    return _FLAT_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m[1].split(",")) + "]", text) + "\n"


def write_json(value: Any, path: str | Path) -> Any:
    """Write ``value`` to ``path`` as :func:`json_text`, atomically; return ``value``."""
    write_bytes(path, json_text(value).encode())
    return value


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[tuple[Path, int]]:
    """Remove the temporary files in ``folder`` whose embedded pid is no live process; return (path, bytes).

    Those are left by jobs killed without a chance to clean up (SIGKILL, a node crash). Files of live
    processes are kept: they may be being written right now.
    """
    folder = Path(folder)
    removed: list[tuple[Path, int]] = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.iterdir()):
        m = TEMP_NAME.match(path.name)
        if not m or not path.is_file() or pid_alive(int(m.group(1))):
            continue
        try:
            size = path.stat().st_blocks * 512
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append((path, size))
        log.info("removed stale temporary file %s of dead process %s (%d bytes)", path, m.group(1), size)
    if removed:
        log.info("removed %d stale temporary file(s) in %s, %d bytes freed", len(removed), folder,
                 sum(s for _, s in removed))
    return removed
