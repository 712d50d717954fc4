"""Shared fixtures: a tiny synthetic corpus generated once per test session by the real code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"


def tiny_synth_config() -> dict:
    """The ``synth`` section of tests/data/tiny.yaml with the schema defaults filled in."""
    from sslfer.config import prepare_config

    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    return prepare_config(cfg, REPO / "config" / "schema.yaml", base=REPO)["synth"]


@pytest.fixture(scope="session")
def synth_cfg() -> dict:
    return tiny_synth_config()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, synth_cfg) -> Path:
    """resources/synth-like tree of the tiny config, seed 0, rendered with 2 workers."""
    from sslfer.synth import corpus

    root = tmp_path_factory.mktemp("synth")
    corpus.write_videos(root, synth_cfg["videos"], seed=0, workers=2)
    corpus.write_affectnet(root, synth_cfg["affectnet"], seed=0, workers=2)
    corpus.write_fer2013(root, synth_cfg["fer2013"], seed=0, workers=2)
    corpus.write_lfw(root, synth_cfg["lfw"], seed=0, workers=2)
    return root


@pytest.fixture(scope="session")
def video_manifest(tiny_corpus):
    """Manifest of the tiny corpus's videos (6 videos, shards of 4)."""
    from sslfer.preprocess.manifest import build_manifest

    return build_manifest("video_tree", tiny_corpus / "voxceleb" / "videos", None, shard_size=4, min_duration_s=3.5)


@pytest.fixture(scope="session")
def processed(video_manifest, tmp_path_factory):
    """(dir, status counts, frames DataFrame, crops memmap): every tiny video processed as one shard with the
    default backends; ``dir`` holds ``frames.parquet`` and ``crops.npy``."""
    import numpy as np
    import pyarrow.parquet as pq

    from sslfer.preprocess.shard import ShardConfig, process_shard

    tmp = tmp_path_factory.mktemp("shard")
    counts = process_shard(video_manifest, ShardConfig(), tmp / "frames.parquet", tmp / "crops.npy", {"rule": "test"})
    return tmp, counts, pq.read_table(tmp / "frames.parquet").to_pandas(), np.load(tmp / "crops.npy", mmap_mode="r")


@pytest.fixture
def snakemake_all(tmp_path):
    """``run(config) -> (returncode, output, work)``: `snakemake all` with ``config`` (a dict, written to a file)
    in a fresh working folder; for tests of what stops a run before any job starts."""
    import subprocess
    import sys

    def run(config: dict):
        cfg = tmp_path / "given.yaml"
        cfg.write_text(yaml.safe_dump(config))
        work = tmp_path / "work"
        work.mkdir(exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
                               str(work), "--configfile", str(cfg), "--cores", "1", "all"],
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stdout + proc.stderr, work

    return run
