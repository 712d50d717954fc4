"""The Snakemake workflow itself: lint-clean, and `all` builds the synthetic corpus on a tiny config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import pyarrow.parquet as pq
import pytest

from sslfer.parquet import read_provenance

REPO = Path(__file__).resolve().parents[1]


def _snakemake(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO)


def test_lint_is_clean():
    proc = _snakemake("--lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def workflow_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("workflow")
    proc = _snakemake("--directory", str(work), "--configfile", str(REPO / "tests" / "data" / "tiny.yaml"),
                      "--cores", "2", "all")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work


def test_all_builds_the_synthetic_corpus(workflow_run):
    root = workflow_run / "resources" / "synth"
    for name in ("videos", "affectnet", "fer2013", "lfw"):
        path = root / "groundtruth" / f"{name}.parquet"
        assert pq.read_metadata(path).num_rows > 0
        assert read_provenance(path)["rule"] == f"synth_{name}"
        log = (workflow_run / "logs" / "synth" / f"{name}.log").read_text()
        assert f"synth {name} done" in log
        assert (workflow_run / "results" / "benchmarks" / f"synth_{name}.tsv").is_file()
    assert len(list((root / "voxceleb" / "videos").rglob("*.mp4"))) == 6
    sheet = cv2.imread(str(workflow_run / "results" / "qc" / "synth_contact_sheet.png"))
    assert sheet.shape[1] == 8 * 160 and sheet.shape[0] == 22 + 2 * 160    # 8 classes × 2 identities


def test_all_runs_the_preprocessing_chain(workflow_run):
    import json

    import numpy as np

    summary = json.loads((workflow_run / "results" / "synth" / "preprocess_summary.json").read_text())
    assert summary["videos"] == 6 and summary["video_status"] == {"ok": 6}
    assert summary["frame_status"].get("ok", 0) >= 0.98 * summary["frames"]
    shard = workflow_run / "results" / "synth" / "frames" / "shard=00000"
    assert pq.read_metadata(shard / "frames.parquet").num_rows == summary["frames"]
    assert np.load(shard / "crops.npy", mmap_mode="r").shape == (summary["frames"], 128, 128, 3)
    sheet = cv2.imread(str(workflow_run / "results" / "qc" / "synth_crops.png"))
    assert sheet.shape[1] == 8 * 128 and sheet.shape[0] % 128 == 0
    log = (workflow_run / "logs" / "synth" / "frames" / "shard=00000.log").read_text()
    assert "shard: " in log and "'ok':" in log


def test_all_precomputes_pairs_swaps_descriptors_and_pretrains(workflow_run):
    import json

    summary = json.loads((workflow_run / "results" / "synth" / "pairs_summary.json").read_text())
    assert summary["tracks"] == 6 and summary["track_status"] == {"ok": 6}
    assert summary["tracks_usable_by"]["time_aug+hard_neg"] == 6
    assert summary["swap_ok_rate"] > 0.9 and summary["descriptor_status"].get("ok", 0) > 0.9 * summary["descriptors"]
    assert cv2.imread(str(workflow_run / "results" / "qc" / "synth_swaps.png")) is not None
    run = workflow_run / "results" / "pretrain" / "all"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(m["swap_rate"] > 0 for m in metrics) and any(m["masked_fraction"] > 0 for m in metrics)
    assert (run / "checkpoint.pt").is_file() and "pretrain" in (workflow_run / "logs" / "pretrain" / "all.log").read_text()


def test_all_evaluates_the_default_variant(workflow_run):
    import json

    res = {d: json.loads((workflow_run / "results" / f"{d}_linear.json").read_text()) for d in ("affectnet", "fer2013", "lfw")}
    assert res["affectnet"]["sizes"]["test"] > 0 and 0 <= res["affectnet"]["expression"]["accuracy"] <= 1
    assert res["affectnet"]["encoder_sha256"] and "valence" in res["affectnet"]
    assert res["fer2013"]["classes"][0] == "Angry" and res["lfw"]["verification"]["n_pairs"] > 0
    leak = json.loads((workflow_run / "results" / "eval" / "all" / "identity_leak.json").read_text())
    assert leak["n_identities"] == 3
    for name in ("training", "affectnet_confusion", "fer2013_confusion", "embedding"):
        assert cv2.imread(str(workflow_run / "results" / "figures" / "all" / f"{name}.png")) is not None


def test_readme_inspection_recipes(workflow_run, monkeypatch):
    import duckdb
    import json

    import pandas as pd

    monkeypatch.chdir(workflow_run)
    summary = json.loads(Path("results/synth/preprocess_summary.json").read_text())
    frames = duckdb.sql("select * from 'results/synth/frames/*/frames.parquet'").df()
    assert len(frames) == len(pd.read_parquet("results/synth/frames/shard=00000/frames.parquet"))
    assert frames.groupby("status").size().to_dict() == summary["frame_status"]
    rows = duckdb.sql("select status, count(*) from 'results/synth/frames/*/frames.parquet' group by all").fetchall()
    assert dict(rows) == summary["frame_status"]
    assert duckdb.sql("select count(distinct shard) from 'results/synth/frames/*/frames.parquet'").fetchall() == [(1,)]


def test_rerun_has_nothing_to_do(workflow_run):
    proc = _snakemake("--directory", str(workflow_run), "--configfile", str(REPO / "tests" / "data" / "tiny.yaml"),
                      "--cores", "2", "all", "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_inspect_cli(workflow_run):
    path = workflow_run / "resources" / "synth" / "groundtruth" / "affectnet.parquet"
    proc = subprocess.run([sys.executable, "-m", "sslfer", "inspect", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "landmarks: fixed_size_list" in proc.stdout and '"rule": "synth_affectnet"' in proc.stdout
    assert "expression_name counts:" in proc.stdout and "no_face:" in proc.stdout


def test_pretrain_rerun_resumes_from_its_checkpoint(workflow_run):
    # last in this file: it makes the encoder newer than the evaluation results built from it
    # Snakemake does not delete checkpoint.pt (not a declared output): a rerun continues from it
    (workflow_run / "results" / "pretrain" / "all" / "encoder.pt").unlink()
    proc = _snakemake("--directory", str(workflow_run), "--configfile", str(REPO / "tests" / "data" / "tiny.yaml"),
                      "--cores", "2", "results/pretrain/all/encoder.pt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (workflow_run / "logs" / "pretrain" / "all.log").read_text()
    assert "at step 4" in log and (workflow_run / "results" / "pretrain" / "all" / "encoder.pt").is_file()
