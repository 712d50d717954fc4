"""One bad video never costs the rest of its shard; SIGTERM leaves no temporary file; a full disk is a message.

Failures are injected into real runs on the tiny corpus: a detector that raises, hangs (with its signals
blocked, like a hang inside C code) or gets its process killed on one video's frame, a SIGTERM to a
shard job, a few-MB filesystem.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sslfer.preprocess.shard as shard
from sslfer.npy import DiskSpaceError
from sslfer.preprocess.decode import iter_frames
from sslfer.preprocess.shard import ShardConfig, process_shard

REPO = Path(__file__).resolve().parents[1]
TARGET = 2          # the video that fails (of the tiny corpus's 6)
AT_FRAME = 3        # at its 4th sampled frame: crops of the frames before it were already written


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _frame_key(rgb: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def target(video_manifest) -> tuple[str, str]:
    """(video_id, key of the frame at which the injected failure happens)."""
    row = video_manifest.slice(TARGET, 1).to_pylist()[0]
    frames = list(iter_frames(row["source_path"], row["kind"], row["n_frames"], row["fps"], 25 / 6))
    return row["video_id"], _frame_key(frames[AT_FRAME][1])


def _inject(monkeypatch, key: str, action) -> None:
    """Replace the shard's detector by one that runs ``action()`` on the frame ``key`` (in the worker too)."""

    class Faulty(shard.FaceDetector):
        def __call__(self, rgb, face_width=None):
            if _frame_key(rgb) == key:
                action()
            return super().__call__(rgb, face_width)

    monkeypatch.setattr(shard, "FaceDetector", Faulty)


def _run(manifest, out: Path, **cfg) -> tuple[pd.DataFrame, np.ndarray]:
    process_shard(manifest, ShardConfig(**cfg), out / "frames.parquet", out / "crops.npy", {"rule": "test"})
    return pq.read_table(out / "frames.parquet").to_pandas(), np.load(out / "crops.npy")


def _assert_others_as_clean(df, crops, processed, video_id: str) -> pd.DataFrame:
    """The rows of every other video equal a clean run's (``processed``), crops included; returns the video's."""
    clean_dir, _, clean, clean_crops = processed
    assert list(df.columns) == list(clean.columns) and len(df) == len(clean)
    other = (df.video_id != video_id).to_numpy()
    pd.testing.assert_frame_equal(df[other].reset_index(drop=True), clean[other].reset_index(drop=True))
    idx = df.crop_index.to_numpy()[other]
    idx = idx[idx >= 0]
    assert len(idx) > 0 and np.array_equal(crops[idx], clean_crops[idx])
    mine = df[~other]
    slots = clean.crop_index[~other].to_numpy()
    assert len(mine) == len(slots) and (crops[slots[slots >= 0]] == 0).all()      # no partial crops kept
    assert (mine.crop_index == -1).all() and mine.landmarks.isna().all() and mine.bbox.isna().all()
    assert list(mine.frame_idx) == list(clean.frame_idx[~other])                    # every frame accounted for
    return mine


def test_an_exception_in_one_video_is_recorded_and_the_others_are_done(processed, video_manifest, target,
                                                                       tmp_path, monkeypatch, caplog):
    video_id, key = target

    def fail():
        raise RuntimeError("injected detector failure")

    _inject(monkeypatch, key, fail)
    caplog.set_level(logging.WARNING, logger="sslfer")
    runs = {}
    for timeout in (0, 600):                           # in this process, and in the watchdog's child process
        df, crops = _run(video_manifest, tmp_path / f"t{timeout}", video_timeout_s=timeout)
        mine = _assert_others_as_clean(df, crops, processed, video_id)
        assert (mine.status == "video_error").all()
        err = mine.error.iloc[0]
        assert (mine.error == err).all()
        source = video_manifest.slice(TARGET, 1).column("source_path")[0].as_py()
        for part in (video_id, source, "detect failed at frame", "RuntimeError", "injected detector failure"):
            assert part in err, (part, err)
        runs[timeout] = tmp_path / f"t{timeout}"
    assert f"video {video_id} failed after {AT_FRAME} of" in caplog.text
    # the failure is deterministic: both runners write the same bytes
    for name in ("frames.parquet", "crops.npy"):
        assert _sha(runs[0] / name) == _sha(runs[600] / name)


def test_clean_shard_is_the_same_in_and_out_of_the_watchdog(processed, video_manifest, tmp_path):
    # processed: the default (a watchdog child process); here the videos run in this process
    _run(video_manifest, tmp_path, video_timeout_s=0)
    for name in ("frames.parquet", "crops.npy"):
        assert _sha(tmp_path / name) == _sha(processed[0] / name)


def test_a_hang_inside_one_video_times_out_and_the_shard_goes_on(processed, video_manifest, target, tmp_path,
                                                                 monkeypatch):
    video_id, key = target
    test_pid = os.getpid()

    def hang():
        if os.getpid() == test_pid:                    # never hang the test process itself
            raise AssertionError("the detector ran in the test process, not in the watchdog's child")
        # like a hang in C code: no Python signal handler would run (only SIGKILL ends it)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGUSR1})
        while True:
            time.sleep(3600)

    _inject(monkeypatch, key, hang)
    # generous for a 17-frame video on a loaded machine; the hung one costs this long
    df, crops = _run(video_manifest, tmp_path, video_timeout_s=30)
    mine = _assert_others_as_clean(df, crops, processed, video_id)
    assert (mine.status == "timeout").all()
    assert mine.error.str.contains(video_id).all() and mine.error.str.contains("video_timeout_s = 30 s").all()
    assert pq.read_metadata(tmp_path / "frames.parquet").num_rows == len(df)


def test_a_worker_killed_mid_video_is_recorded_and_replaced(processed, video_manifest, target, tmp_path,
                                                            monkeypatch):
    video_id, key = target
    test_pid = os.getpid()

    def die():                                         # e.g. the OOM killer, or a segfault in a C library
        if os.getpid() != test_pid:
            os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("the detector ran in the test process, not in the watchdog's child")

    _inject(monkeypatch, key, die)
    df, crops = _run(video_manifest, tmp_path, video_timeout_s=600)
    mine = _assert_others_as_clean(df, crops, processed, video_id)
    assert (mine.status == "video_error").all()
    assert mine.error.str.contains(f"{video_id} .*worker process died \\(killed by SIGKILL\\)").all()


# --------------------------------------------------------------------------------------------------
# SIGTERM (a SLURM time limit): no temporary file left, non-zero exit

SHARD_JOB = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from sslfer.preprocess import shard
    from sslfer.preprocess.manifest import build_manifest
    from sslfer.rulelog import rule_log

    videos, out, marker, timeout = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    calls = 0

    class Blocking(shard.FaceDetector):           # blocks in the second video, its first video done
        def __call__(self, rgb, face_width=None):
            global calls
            calls += 1
            if calls == 20:
                marker.with_suffix(".tmp").write_text(str(os.getpid()))
                marker.with_suffix(".tmp").rename(marker)
                while True:
                    time.sleep(3600)
            return super().__call__(rgb, face_width)

    shard.FaceDetector = Blocking
    with rule_log(out.parent / "job.log"):
        m = build_manifest("video_tree", videos, None, shard_size=4, min_duration_s=3.5)
        shard.process_shard(m, shard.ShardConfig(video_timeout_s=timeout), out / "frames.parquet",
                            out / "crops.npy", {"rule": "test"})
""")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("timeout", [0, 600], ids=["in_process", "watchdog"])
def test_sigterm_leaves_no_temporary_files(tiny_corpus, tmp_path, timeout):
    out, marker = tmp_path / "shard", tmp_path / "blocked"
    job = subprocess.Popen([sys.executable, "-c", SHARD_JOB, str(tiny_corpus / "voxceleb" / "videos"), str(out),
                            str(marker), str(timeout)], env=dict(os.environ, PYTHONPATH=str(REPO / "workflow")))
    try:
        for _ in range(1200):                          # wait (at most 10 min) until the job is mid-shard
            if marker.exists() or job.poll() is not None:
                break
            time.sleep(0.5)
        assert marker.exists(), f"the job never reached its second video (exit status {job.poll()})"
        worker = int(marker.read_text())
        assert any(p.name.startswith(".crops.npy.tmp-") for p in out.iterdir())   # something to clean up
        job.send_signal(signal.SIGTERM)
        rc = job.wait(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert rc == 128 + signal.SIGTERM
    assert list(out.iterdir()) == []
    assert "terminated by SIGTERM" in (tmp_path / "job.log").read_text()
    assert (worker == job.pid) == (timeout == 0) and _gone(worker)      # the watchdog's child went with it


# --------------------------------------------------------------------------------------------------
# a full disk: a message naming the file and the bytes, never a SIGBUS, nothing left behind


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root and the right to mount)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_full_disk_before_the_crops_is_a_message(small_disk, video_manifest):
    out = small_disk / "shard"
    with pytest.raises(DiskSpaceError) as err:
        _run(video_manifest, out)
    msg, rows = str(err.value), shard._rows_expected(video_manifest, 25 / 6)
    needed = rows * 128 * 128 * 3 + 4096
    assert str(out / "crops.npy") in msg and f"{needed} bytes needed" in msg and " bytes free " in msg
    assert err.value.free <= 2 * 1024 * 1024 < needed
    assert _all_files(small_disk) == []


def test_disk_filling_up_while_allocating_is_a_message(small_disk, monkeypatch):
    # the free-space check passes (another job then takes the space): allocating the blocks fails cleanly
    import sslfer.npy as npy

    from sslfer.npy import atomic_crops

    monkeypatch.setattr(npy, "free_bytes", lambda _folder: 1 << 40)
    with pytest.raises(DiskSpaceError, match=r"crops\.npy: \d+ bytes needed .*allocating the file failed"):
        with atomic_crops(small_disk / "crops.npy", 64, 128):       # 3 MiB on a 2 MiB disk
            pass
    assert _all_files(small_disk) == []


NO_SIGBUS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from sslfer.npy import atomic_crops

    disk = Path(sys.argv[1])
    with atomic_crops(disk / "crops.npy", 20, 128) as crops:        # ~1 MiB of the 2 MiB disk
        with open(disk / "filler", "wb", buffering=0) as fh:         # then another writer fills the disk
            try:
                while True:
                    fh.write(b"x" * 65536)
            except OSError:
                pass
        for i in range(20):
            crops[i] = i + 1                                         # a sparse file would SIGBUS here
""")


def test_crops_written_after_the_disk_filled_up_do_not_sigbus(small_disk):
    res = subprocess.run([sys.executable, "-c", NO_SIGBUS, str(small_disk)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(REPO / "workflow")))
    assert res.returncode == 0, (res.returncode, res.stderr[-2000:])
    crops = np.load(small_disk / "crops.npy")
    assert [int(c.min()) for c in crops] == [int(c.max()) for c in crops] == list(range(1, 21))
    assert sorted(p.name for p in _all_files(small_disk)) == ["crops.npy", "filler"]


# --------------------------------------------------------------------------------------------------
# stale temporary files of dead jobs: removed when a shard starts


def test_stale_temporary_files_of_dead_jobs_are_removed_at_start(video_manifest, tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        stale = [tmp_path / f".crops.npy.tmp-{dead.pid}.npy", tmp_path / f".frames.parquet.tmp-{dead.pid}"]
        kept = tmp_path / f".crops.npy.tmp-{live.pid}.npy"
        for p in [*stale, kept]:
            p.write_bytes(b"\1" * 50000)
        caplog.set_level(logging.INFO, logger="sslfer")
        _run(video_manifest.slice(0, 1), tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["crops.npy", "frames.parquet", kept.name])
        for p in stale:
            assert f"removed stale temporary file {p} of dead process {dead.pid}" in caplog.text
        assert "2 stale temporary file(s)" in caplog.text
    finally:
        live.kill()
        live.wait()


FAN_AFTER_TORCH = """
import json, sys, torch
from face_alignment.models import FAN
from sslfer.preprocess.manifest import build_manifest
from sslfer.preprocess.shard import ShardConfig, process_shard

x = torch.randn(256, 256)
(x @ x).sum()                                    # this process's OpenMP pool now runs
torch.nn.functional.conv2d(torch.randn(8, 3, 64, 64), torch.randn(16, 3, 3, 3))
out = sys.argv[2]
torch.save(FAN(4).state_dict(), out + "/fan.pth.tar")
m = build_manifest("video_tree", sys.argv[1], None, shard_size=4, min_duration_s=3.5).slice(0, 1)
cfg = ShardConfig(landmarks="fan", fan_weights=out + "/fan.pth.tar", video_timeout_s=120)
print(json.dumps(process_shard(m, cfg, out + "/frames.parquet", out + "/crops.npy", {"rule": "test"})))
"""


def test_the_watchdog_child_runs_torch_after_its_parent_did(tiny_corpus, tmp_path):
    # a forked child entering an OpenMP pool that its parent had started used to hang (FAN landmarks)
    proc = subprocess.run([sys.executable, "-c", FAN_AFTER_TORCH, str(tiny_corpus / "voxceleb" / "videos"),
                           str(tmp_path)], capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(counts.values()) > 0 and "video_error" not in counts and "timeout" not in counts
