"""Benchmark: how long Snakemake takes to build the workflow's DAG for a corpus of N videos.

For each requested size, writes a simulated corpus manifest (``results/<corpus>/videos.parquet`` with N rows
in shards of ``--shard-size`` videos; no video is read) into a scratch working directory, marks the manifest
checkpoint as done, and times ``snakemake -n`` (a dry run: DAG built, nothing executed) for a target that
needs every shard: the pairs summary (one preprocessing, swap and descriptor job per shard, the pairs
index, the summary).
Prints the number of shards, of jobs, and the wall time of the dry run. Run with the project's environment:

    python benchmarks/dag_build.py --rows 10000 100000 --shard-size 16 256
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
corpus: sim
corpora:
  sim: {{format: csv, path: listing.csv}}
preprocess: {{shard_size: {shard_size}}}
"""


def simulated_manifest(rows: int, shard_size: int) -> pa.Table:
    """A manifest's identifying columns for ``rows`` videos of 1,000 speakers, ``shard_size`` per shard."""
    ids = [f"id{i % 1000:05d}/clip{i // 1000:07d}/00001" for i in range(rows)]
    return pa.table({"video_id": ids, "identity": [v[:7] for v in ids],
                     "shard": pa.array([i // shard_size for i in range(rows)], pa.int32())})


def dry_run(workdir: Path, target: str) -> tuple[float, int]:
    """Seconds of ``snakemake -n <target>`` in ``workdir`` and the number of jobs it lists."""
    cmd = [sys.executable, "-m", "snakemake", target, "-n", "--cores", "1", "-s", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(workdir / "config.yaml")]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    seconds = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(f"snakemake -n failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    totals = re.findall(r"^total\s+(\d+)", res.stdout + res.stderr, flags=re.M)
    return seconds, int(totals[-1]) if totals else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--shard-size", type=int, nargs="+", default=[16, 256])
    ap.add_argument("--target", default="results/sim/pairs_summary.json")
    args = ap.parse_args()
    print(f"{'videos':>10}{'shard size':>12}{'shards':>9}{'jobs':>9}{'dry run s':>11}")
    for rows in args.rows:
        for shard_size in args.shard_size:
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                (work / "config.yaml").write_text(CONFIG.format(shard_size=shard_size))
                (work / "listing.csv").write_text("path,identity\nv.mp4,id00000\n")   # the manifest is simulated
                (work / "v.mp4").touch()
                manifest = work / "results" / "sim" / "videos.parquet"
                manifest.parent.mkdir(parents=True)
                pq.write_table(simulated_manifest(rows, shard_size), manifest)
                later = time.time() + 60                      # newer than its input: the checkpoint is done
                os.utime(manifest, (later, later))
                seconds, jobs = dry_run(work, args.target)
                print(f"{rows:>10}{shard_size:>12}{-(-rows // shard_size):>9}{jobs:>9}{seconds:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
