"""The Snakemake workflow itself: lint-clean, and `all` builds the synthetic corpus on a tiny config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from sslfer.parquet import read_provenance

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"


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
        log = (workflow_run / "logs" / "synth" / "resources_synth" / f"{name}.log").read_text()   # per synth.root
        assert f"synth {name} done" in log
        assert (workflow_run / "results" / "benchmarks" / f"synth_resources_synth_{name}.tsv").is_file()
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
    run = workflow_run / "results" / "synth" / "pretrain" / "all"
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert all(m["swap_rate"] > 0 for m in metrics) and any(m["masked_fraction"] > 0 for m in metrics)
    assert (run / "checkpoint.pt").is_file() and "pretrain" in (workflow_run / "logs" / "synth" / "pretrain" / "all.log").read_text()


def test_all_evaluates_the_default_variant(workflow_run):
    import json

    res = {d: json.loads((workflow_run / "results" / f"{d}_linear.json").read_text()) for d in ("affectnet", "fer2013", "lfw")}
    assert res["affectnet"]["sizes"]["test"] > 0 and 0 <= res["affectnet"]["expression"]["accuracy"] <= 1
    assert res["affectnet"]["encoder_sha256"] and "valence" in res["affectnet"]
    assert res["fer2013"]["classes"][0] == "Angry" and res["lfw"]["verification"]["n_pairs"] > 0
    leak = json.loads((workflow_run / "results" / "synth" / "eval" / "all" / "identity_leak.json").read_text())
    assert leak["n_identities"] == 3
    for name in ("training", "affectnet_confusion", "fer2013_confusion", "embedding"):
        assert cv2.imread(str(workflow_run / "results" / "synth" / "figures" / "all" / f"{name}.png")) is not None


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


def test_the_readme_report_command_renders(workflow_run):
    # the README's `snakemake --report report.html all`, for real (tests/test_docs_commands.py dry-runs the rest)
    proc = _snakemake("--directory", str(workflow_run), "--configfile", str(TINY), "--report", "report.html", "all")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = (workflow_run / "report.html").read_text(errors="replace")
    assert "synth_crops.png" in html and "training.png" in html


def _jobs(workflow_run: Path, target: str, override: dict | None = None, tmp: Path | None = None) -> dict[str, int]:
    """The jobs (rule → count) that `snakemake -n` would run for ``target`` with ``override`` on top of tiny.yaml."""
    import yaml

    files = [str(TINY)]
    if override is not None:
        extra = (tmp or workflow_run) / "override.yaml"
        extra.write_text(yaml.safe_dump(override))
        files.append(str(extra))
    proc = _snakemake("--directory", str(workflow_run), "--cores", "2", target, "-n", "--configfile", *files)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:"):].split("total")[0].splitlines()[3:]
    return {rule: int(n) for rule, n in (line.split() for line in table if line.strip())}


_DEFAULT_VARIANTS = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())[
    "properties"]["pretrain"]["properties"]["variants"]["default"]
#: settings that shape no output of `all`: changing them must rerun nothing (another variant's switches included)
NOT_SHAPING = [{"pretrain": {"threads": 1}}, {"pretrain": {"checkpoint_every": 3}},
               {"evaluation": {"seeds": [0, 1]}}, {"evaluation": {"batch_size": 7}},
               {"evaluation": {"prepare_threads": 1}}, {"evaluation": {"finetune": {"epochs": 3}}},
               {"pretrain": {"variants": dict(_DEFAULT_VARIANTS, simclr={"time_aug": True, "hard_neg": False,
                                                                         "face_swap": False, "mask_fn": "off"})}}]


@pytest.mark.parametrize("override", NOT_SHAPING, ids=lambda o: yaml_key(o))
def test_a_setting_that_shapes_nothing_reruns_nothing(workflow_run, override, tmp_path):
    assert _jobs(workflow_run, "all", override, tmp_path) == {}


def yaml_key(override: dict) -> str:
    key, value = next(iter(override.items()))
    return key + "." + yaml_key(value) if isinstance(value, dict) else key


def test_each_setting_reruns_exactly_what_it_shapes(workflow_run, tmp_path):
    assert _jobs(workflow_run, "all") == {}
    # LFW's identification threshold: only the LFW probe and its copy at results/
    assert _jobs(workflow_run, "all", {"evaluation": {"lfw_min_images": 5}}, tmp_path) == {
        "eval_linear": 1, "default_result": 1, "all": 1}
    # frames sampled per track for the identity leak: the corpus features and what reads them
    assert _jobs(workflow_run, "all", {"evaluation": {"corpus_frames_per_track": 4}}, tmp_path) == {
        "eval_corpus_features": 1, "identity_leak": 1, "figures": 1, "all": 1}
    # training length: the encoder and every evaluation of it, not the corpus or the evaluation sets
    steps = _jobs(workflow_run, "all", {"pretrain": {"steps": 5}}, tmp_path)
    assert steps["pretrain"] == 1 and steps["eval_features"] == 3 and steps["eval_linear"] == 3
    assert not {"preprocess_manifest", "preprocess_shard", "pairs_index", "eval_prepare", "eval_prepare_lfw"} & set(steps)
    # videos per shard: the corpus's manifest and everything after it, never the evaluation sets or the synth corpus
    shard = _jobs(workflow_run, "all", {"preprocess": {"shard_size": 2}}, tmp_path)
    assert shard["preprocess_manifest"] == 1
    assert not {"eval_prepare", "eval_prepare_lfw"} & set(shard) and not any(r.startswith("synth") for r in shard)
    # how evaluation sets are aligned: their preparation and what follows, not the pretraining corpus
    align = _jobs(workflow_run, "all", {"preprocess": {"detect": {"upsample": 0}}}, tmp_path)
    assert align["eval_prepare"] == 2 and align["eval_prepare_lfw"] == 1 and align["preprocess_shard"] == 1
    assert "preprocess_manifest" not in align and not any(r.startswith("synth") for r in align)


def _tree_digest(root: Path) -> dict[str, str]:
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_second_corpus_gets_its_own_encoder_and_results(workflow_run, tmp_path):
    import json

    import torch

    videos = sorted((workflow_run / "resources" / "synth" / "voxceleb" / "videos").rglob("*.mp4"))
    mine = [v for v in videos if v.parts[-3] in ("id10001", "id10002")]          # 2 identities × 2 videos
    assert len(mine) == 4
    csv = tmp_path / "mine.csv"
    csv.write_text("path,identity\n" + "".join(f"{v},{v.parts[-3]}\n" for v in mine))
    first = _tree_digest(workflow_run / "results" / "synth")
    # the second corpus stores its crops and swaps as JPEG files (as config/voxceleb.yaml does): every stage
    # after preprocessing, training and the identity leak included, reads them
    override = {"corpus": "mine", "corpora": {"mine": {"format": "csv", "path": str(csv)}},
                "preprocess": {"storage": "jpeg"}, "swap": {"storage": "jpeg"}}
    # before anything of the new corpus exists, its encoder is not "up to date"
    assert _jobs(workflow_run, "results/mine/pretrain/all/encoder.pt", override, tmp_path)["pretrain"] == 1
    proc = _snakemake("--directory", str(workflow_run), "--cores", "2", "all", "--configfile", str(TINY),
                      str(tmp_path / "override.yaml"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = (workflow_run / "logs" / "mine" / "pretrain" / "all.log").read_text()
    assert "training from step 0" in log and "resuming" not in log and "corpus mine" in log
    a = torch.load(workflow_run / "results" / "synth" / "pretrain" / "all" / "encoder.pt", weights_only=False)
    b = torch.load(workflow_run / "results" / "mine" / "pretrain" / "all" / "encoder.pt", weights_only=False)
    assert a["config"]["corpus"] == "synth" and b["config"]["corpus"] == "mine"
    assert a["data_digest"] != b["data_digest"]
    assert any(not torch.equal(a["backbone"][k], b["backbone"][k]) for k in a["backbone"])
    for name in ("affectnet", "fer2013", "lfw"):
        res = json.loads((workflow_run / "results" / f"{name}_linear.json").read_text())    # the configured corpus's
        assert res["corpus"] == "mine" and res["training_data"]["corpus"] == "mine"
        assert res["training_data"]["data_digest"] == b["data_digest"]
        assert res["dataset_inputs"]["input_fingerprint"] and res["dataset_inputs"]["path"].endswith(
            "lfw" if name == "lfw" else ("fer2013.csv" if name == "fer2013" else "affectnet"))
        old = json.loads((workflow_run / "results" / "synth" / "eval" / "all" / f"{name}_linear.json").read_text())
        assert old["corpus"] == "synth" and old["encoder_sha256"] != res["encoder_sha256"]
        assert old["dataset_inputs"]["input_fingerprint"] == res["dataset_inputs"]["input_fingerprint"]
    leak = json.loads((workflow_run / "results" / "mine" / "eval" / "all" / "identity_leak.json").read_text())
    assert leak["corpus"] == "mine" and leak["n_identities"] == 2
    assert _tree_digest(workflow_run / "results" / "synth") == first                   # the first corpus untouched
    assert not (workflow_run / "results" / "mine" / "pretrain" / "all" / "aside-1").exists()
    for kind in ("frames/shard=00000/crops.npy", "swaps/shard=00000/swaps.npy"):
        assert np.load(workflow_run / "results" / "mine" / kind, mmap_mode="r").ndim == 1      # JPEG arrays
    # editing the corpus's listing reruns its manifest and what follows, not the evaluation sets
    assert _jobs(workflow_run, "all", override, tmp_path) == {}
    csv.write_text("path,identity\n" + "".join(f"{v},{v.parts[-3]}\n" for v in mine[:3]))
    edited = _jobs(workflow_run, "all", override, tmp_path)
    assert edited["preprocess_manifest"] == 1 and "eval_prepare" not in edited


def test_a_corpus_of_one_video_per_person_completes_with_the_identity_leak_not_computable(workflow_run, tmp_path):
    import json

    videos = sorted((workflow_run / "resources" / "synth" / "voxceleb" / "videos").rglob("*.mp4"))
    first = {}
    for v in videos:
        first.setdefault(v.parts[-3], v)                                     # one video of each identity
    csv = tmp_path / "solo.csv"
    csv.write_text("path,identity\n" + "".join(f"{v},{who}\n" for who, v in sorted(first.items())))
    override = tmp_path / "solo.yaml"
    override.write_text(yaml.safe_dump({"corpus": "solo", "corpora": {"solo": {"format": "csv", "path": str(csv)}}}))
    proc = _snakemake("--directory", str(workflow_run), "--cores", "2", "all", "--configfile", str(TINY), str(override))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    leak = json.loads((workflow_run / "results" / "solo" / "eval" / "all" / "identity_leak.json").read_text())
    assert leak["computable"] is False and leak["corpus"] == "solo"
    assert leak["reason"].startswith("fewer than two identities have two or more tracks")
    for name in ("affectnet", "fer2013"):
        res = json.loads((workflow_run / "results" / f"{name}_linear.json").read_text())
        assert res["corpus"] == "solo" and res["expression"]["computable"] and 0 <= res["expression"]["accuracy"] <= 1
    assert cv2.imread(str(workflow_run / "results" / "solo" / "figures" / "all" / "embedding.png")) is not None


def test_all_renders_no_synthetic_corpus_when_nothing_configured_lives_there(workflow_run, tmp_path):
    import shutil

    synth = workflow_run / "resources" / "synth"
    for name in ("affectnet", "fer2013", "lfw"):
        shutil.copytree(synth / name, tmp_path / name)
    video = next((synth / "voxceleb" / "videos").rglob("*.mp4"))
    (tmp_path / "own.csv").write_text(f"path,identity\n{video},someone\n")
    override = {"corpus": "own", "corpora": {"own": {"format": "csv", "path": str(tmp_path / "own.csv")}},
                "datasets": {"affectnet": {"format": "affectnet_csv", "path": str(tmp_path / "affectnet")},
                             "fer2013": {"format": "fer2013_csv", "path": str(tmp_path / "fer2013" / "fer2013.csv")},
                             "lfw": {"data_home": str(tmp_path / "lfw")}}}
    jobs = _jobs(workflow_run, "all", override, tmp_path)
    assert jobs["preprocess_manifest"] == 1 and jobs["eval_prepare"] == 2
    assert not any(rule.startswith("synth") for rule in jobs)


def test_pretrain_rerun_resumes_from_its_checkpoint(workflow_run):
    # last in this file: it makes the encoder newer than the evaluation results built from it
    # Snakemake does not delete checkpoint.pt (not a declared output): a rerun continues from it
    (workflow_run / "results" / "synth" / "pretrain" / "all" / "encoder.pt").unlink()
    proc = _snakemake("--directory", str(workflow_run), "--configfile", str(TINY),
                      "--cores", "2", "results/synth/pretrain/all/encoder.pt")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (workflow_run / "logs" / "synth" / "pretrain" / "all.log").read_text()
    assert "at step 4" in log and (workflow_run / "results" / "synth" / "pretrain" / "all" / "encoder.pt").is_file()
