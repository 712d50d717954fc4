"""Every rule's job turns SIGTERM (a cluster's time limit) into a clean exit: its temporary files are removed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

JOB = """
import sys, time
from sslfer.npy import atomic_crops
from sslfer.rulelog import rule_log

with rule_log(sys.argv[1] + "/job.log"):
    with atomic_crops(sys.argv[1] + "/crops.npy", 64, 32) as crops:
        crops[0] = 1
        open(sys.argv[1] + "/started", "w").close()
        time.sleep(120)
"""


def test_sigterm_inside_a_rule_removes_its_temporary_files(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(tmp_path)])
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the job did not start"
        time.sleep(0.1)
    assert [p.name for p in tmp_path.glob(".crops.npy.tmp-*")]            # the memory map is being written
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log", "started"]
    assert "terminated by SIGTERM" in (Path(tmp_path) / "job.log").read_text()
