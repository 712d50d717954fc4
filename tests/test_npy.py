"""Atomic crop arrays: readers see the whole array or nothing; a crash leaves no temporary file; a full disk is
a message; dead jobs' temporary files are removed."""

from __future__ import annotations

import errno
import logging
import subprocess
import sys

import numpy as np
import pytest

from sslfer.files import remove_stale_temps
from sslfer.npy import HEADER_BYTES, DiskSpaceError, atomic_crops


def test_atomic_crops_appears_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "crops.npy"
    with atomic_crops(path, 3, 4) as crops:
        crops[1] = 7
        assert not path.exists()                      # not visible while being written
    out = np.load(path)
    assert out.shape == (3, 4, 4, 3) and out.dtype == np.uint8
    assert out[1].min() == 7 and out[0].max() == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["crops.npy"]


def test_atomic_crops_leaves_nothing_after_a_crash(tmp_path):
    path = tmp_path / "crops.npy"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_crops(path, 2, 4) as crops:
            crops[0] = 1
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_crops_allocates_its_blocks_up_front(tmp_path):
    # a sparse file would take its blocks at the first write into the map: on a full disk, SIGBUS
    path = tmp_path / "crops.npy"
    with atomic_crops(path, 64, 32) as crops:
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".crops.npy.tmp-")]
        st = tmp.stat()
        assert st.st_size >= 64 * 32 * 32 * 3 and st.st_blocks * 512 >= st.st_size
        crops[:] = 3
    assert np.load(path).min() == 3


def test_atomic_crops_refuses_a_file_larger_than_the_free_space(tmp_path):
    import shutil

    n = 2 * shutil.disk_usage(tmp_path).free // (1024 * 1024 * 3)     # 1024² RGB crops: twice the free space
    with pytest.raises(DiskSpaceError) as err:
        with atomic_crops(tmp_path / "crops.npy", n, 1024):
            pass
    msg = str(err.value)
    assert str(tmp_path / "crops.npy") in msg and f"{n * 1024 * 1024 * 3 + HEADER_BYTES} bytes needed" in msg
    assert " bytes free " in msg and err.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temps_keeps_live_jobs_files(tmp_path, caplog):
    dead, live = _dead_pid(), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        files = {name: tmp_path / name for name in (
            f".crops.npy.tmp-{dead}.npy", f".frames.parquet.tmp-{dead}",          # a dead job's: removed
            f".crops.npy.tmp-{live.pid}.npy", f".frames.parquet.tmp-{live.pid}",  # a live job's: kept
            "crops.npy", ".notes.tmp-abc", f"x.tmp-{dead}")}                      # not temporary files: kept
        for p in files.values():
            p.write_bytes(b"\0" * 10000)
        caplog.set_level(logging.INFO, logger="sslfer")
        removed = remove_stale_temps(tmp_path)
        assert sorted(p.name for p, _ in removed) == [f".crops.npy.tmp-{dead}.npy", f".frames.parquet.tmp-{dead}"]
        assert all(size >= 10000 for _, size in removed)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(set(files) - {p.name for p, _ in removed})
        assert f".crops.npy.tmp-{dead}.npy of dead process {dead}" in caplog.text and "2 stale temporary" in caplog.text
    finally:
        live.kill()
        live.wait()
