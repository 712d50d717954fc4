"""The SLURM profile (slurm/config.yaml) on a real one-node SLURM cluster (tests/slurm_cluster.sh).

The workflow is built through the cluster with the shipped profile plus a few test-only settings, and its
results are compared with a local run's; a job that fails must fail the run. Needs root and apt (or SLURM
already installed): skipped with the reason otherwise, unless SSLFER_REQUIRE_SLURM=1 (CI), which turns a
cluster that cannot come up into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm_cluster.sh"
PROFILE = REPO / "slurm" / "config.yaml"
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"

TARGET = "results/affectnet_linear.json"  # the user's target: built through the cluster, compared with a local run
EXTRA_CONFIG = {"preprocess": {"shard_size": 3}}  # 6 tiny videos → 2 shards → 2 jobs per shard rule
TEST_SETTINGS = {  # laid over slurm/config.yaml for the test cluster only
    "slurm-status-command": "squeue",  # no accounting here, so sacct cannot answer
    "slurm-init-seconds-before-status-checks": 2,  # the plugin's default waits 40 s, then 40 + 10·n s more
    "seconds-between-status-checks": 2,  # before the first check
    "slurm-keep-successful-logs": True,  # the per-job SLURM logs show which jobs went through SLURM
}
NOT_COMPARED = ("results/benchmarks/",)  # timings
# left out when the JSON-lines files (pretraining metrics, the monitor) are compared
TIMING_KEYS = {"images_per_s", "seconds", "train_seconds"}
RUN_TIMEOUT_S = 1200  # the cluster run and the local run share the machine's cores
REQUIRE = os.environ.get("SSLFER_REQUIRE_SLURM") == "1"

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"SSLFER_REQUIRE_SLURM=1 but {reason}")
    pytest.skip(reason)


def _partitions(profile: dict) -> list[str]:
    """Every partition the profile names, the default one first."""
    names = [profile["default-resources"]["slurm_partition"]]
    names += [r["slurm_partition"] for r in profile.get("set-resources", {}).values() if "slurm_partition" in r]
    return list(dict.fromkeys(names))


def _test_profile(cpus: int, mem_mb: int) -> dict:
    """The shipped profile with TEST_SETTINGS, its CPUs and memory capped to what the one node has."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile.update(TEST_SETTINGS)
    profile["local-cores"] = min(profile["local-cores"], cpus)
    profile["set-threads"] = {rule: min(n, cpus) for rule, n in profile.get("set-threads", {}).items()}
    for res in [profile["default-resources"], *profile.get("set-resources", {}).values()]:
        if "mem_mb" in res:
            res["mem_mb"] = min(res["mem_mb"], mem_mb // cpus)  # CPUs, not memory, limit the jobs at once
        for key in ("cpus_per_task", "cpus_per_gpu"):
            if key in res:
                res[key] = min(res[key], cpus)
    return profile


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict:
    """A one-node SLURM cluster with the profile's partitions, torn down after the module."""
    if os.geteuid() != 0:
        _unavailable("the SLURM cluster test needs root (it installs and starts slurmctld, slurmd, munged)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        _unavailable("SLURM is not installed and there is no apt-get to install it")
    state = tmp_path_factory.mktemp("slurm")
    partitions = _partitions(yaml.safe_load(PROFILE.read_text()))
    proc = subprocess.run(["bash", str(CLUSTER), "up", str(state), *partitions],
                          check=False, capture_output=True, text=True, timeout=900)
    try:
        if proc.returncode != 0:
            _unavailable(f"the SLURM cluster did not come up: {proc.stderr.strip()[-1500:]}")
        info = dict(line.split("=", 1) for line in proc.stdout.split() if line.startswith("SLURM_TEST_"))
        yield {"state": state, "cpus": int(info["SLURM_TEST_CPUS"]), "mem_mb": int(info["SLURM_TEST_MEM_MB"]),
               "ctld_log": state / "log" / "slurmctld.log"}
    finally:
        subprocess.run(["bash", str(CLUSTER), "down", str(state)], check=True, capture_output=True, timeout=120)


def _start(work: Path, *args: str) -> subprocess.Popen:
    """snakemake on the tiny config (+ EXTRA_CONFIG) in `work`, under `timeout -k` (a lost job must not hang CI);
    its log goes to `<work>.snakemake.log`."""
    work.mkdir(parents=True, exist_ok=True)
    extra = work / "extra_config.yaml"
    extra.write_text(yaml.safe_dump(EXTRA_CONFIG))
    cmd = ["timeout", "-k", "10", str(RUN_TIMEOUT_S), sys.executable, "-m", "snakemake", *args,
           "-s", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", str(TINY_CONFIG), str(extra)]
    with open(work.parent / f"{work.name}.snakemake.log", "w") as log:
        return subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    """Exit status and log of a run started by :func:`_start`."""
    returncode = proc.wait(timeout=RUN_TIMEOUT_S + 60)
    work = Path(proc.args[proc.args.index("--directory") + 1])
    return returncode, (work.parent / f"{work.name}.snakemake.log").read_text()


def _profile_dir(path: Path, cluster: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(_test_profile(cluster["cpus"], cluster["mem_mb"])))
    return path


def _slurm_logs(work: Path) -> dict[int, str]:
    """SLURM job id → rule, from the per-job logs in the profile's slurm-logdir (rule_<name>/<wildcards>/<id>.log)."""
    logdir = work / yaml.safe_load(PROFILE.read_text())["slurm-logdir"]
    return {int(p.stem): p.relative_to(logdir).parts[0].removeprefix("rule_") for p in logdir.rglob("*.log")}


def _ctld_jobs(cluster: dict) -> dict[int, dict]:
    """What slurmctld logged per job: its partition and exit status."""
    started = r"sched: Allocate JobId=(\d+) .*Partition=(\S+)|sched/backfill: _start_job: Started JobId=(\d+) in (\S+) "
    jobs: dict[int, dict] = {}
    for line in cluster["ctld_log"].read_text().splitlines():
        if m := re.search(started, line):
            job_id, partition = (m[1], m[2]) if m[1] else (m[3], m[4])
            jobs.setdefault(int(job_id), {})["partition"] = partition
        elif m := re.search(r"_job_complete: JobId=(\d+) WEXITSTATUS (\d+)", line):
            jobs.setdefault(int(m[1]), {})["exit"] = int(m[2])
    return jobs


def _jobs(log: str) -> Counter:
    """Jobs per rule that a run finished (wherever they ran)."""
    return Counter(re.findall(r"^Finished jobid: \d+ \(Rule: (\w+)\)$", log, re.MULTILINE))


def _submitted(log: str) -> dict[int, str]:
    """SLURM job id → rule of every job the run submitted to SLURM."""
    found = re.findall(r"submitted with SLURM jobid (\d+) \(log: .*/rule_(\w+)/", log)
    return {int(job_id): rule for job_id, rule in found}


def _compared_files(root: Path) -> dict[str, Path]:
    files = {}
    for path in sorted((root / "results").rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(NOT_COMPARED):
            files[rel] = path
    return files


def _without_timings(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in records]


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory) -> dict:
    """TARGET built through the cluster and, at the same time (the cluster run mostly waits), locally on as
    many cores as the node has."""
    base = tmp_path_factory.mktemp("runs")
    profile = _profile_dir(base / "profile", cluster)
    on_cluster = _start(base / "cluster", TARGET, "--profile", str(profile))
    local = _start(base / "local", TARGET, "--cores", str(cluster["cpus"]))
    (cluster_rc, cluster_log), (local_rc, local_log) = _finish(on_cluster), _finish(local)
    assert cluster_rc == 0, cluster_log[-6000:]
    assert local_rc == 0, local_log[-4000:]
    return {"base": base, "profile": profile, "cluster_log": cluster_log, "local_log": local_log}


def test_jobs_went_through_slurm(runs, cluster):
    submitted = _submitted(runs["cluster_log"])
    assert _jobs(runs["cluster_log"]) == _jobs(runs["local_log"])  # the same jobs, wherever they ran
    per_rule = Counter(submitted.values())
    assert per_rule["preprocess_shard"] == per_rule["swap_shard"] == per_rule["descriptors_shard"] == 2
    assert _slurm_logs(runs["base"] / "cluster") == submitted  # each SLURM job wrote its log in slurm-logdir
    ctld = _ctld_jobs(cluster)
    profile = yaml.safe_load(runs["profile"].joinpath("config.yaml").read_text())
    for job_id, rule in submitted.items():  # slurmctld ran each in the partition the profile names, exit 0
        want = profile["set-resources"].get(rule, {}).get("slurm_partition",
                                                          profile["default-resources"]["slurm_partition"])
        assert ctld[job_id] == {"partition": want, "exit": 0}, (job_id, rule)


def test_cluster_results_equal_local_results(runs):
    on_cluster = _compared_files(runs["base"] / "cluster")
    local = _compared_files(runs["base"] / "local")
    assert TARGET in local and sorted(on_cluster) == sorted(local)
    for rel, path in local.items():
        if path.suffix == ".json":
            assert json.loads(on_cluster[rel].read_text()) == json.loads(path.read_text()), rel
        elif path.suffix == ".jsonl":
            assert _without_timings(on_cluster[rel]) == _without_timings(path), rel
        else:
            assert on_cluster[rel].read_bytes() == path.read_bytes(), rel


def test_a_failing_job_fails_the_run(runs, cluster):
    """A broken shard table makes the pairs_index job fail on the cluster: reported, retried, exit non-zero."""
    work = runs["base"] / "broken"
    shutil.copytree(runs["base"] / "cluster", work, symlinks=True)
    shutil.rmtree(work / yaml.safe_load(PROFILE.read_text())["slurm-logdir"])
    (work / "results" / "synth" / "frames" / "shard=00000" / "frames.parquet").write_bytes(b"not a parquet file")
    returncode, log = _finish(_start(work, "results/synth/pairs.parquet", "--forcerun", "pairs_index",
                                     "--profile", str(runs["profile"])))
    assert returncode != 0
    assert "Error in rule pairs_index" in log
    assert "shard=00000/frames.parquet" in (work / "logs" / "synth" / "pairs_index.log").read_text()  # our break
    submitted = _submitted(log)
    retries = yaml.safe_load(PROFILE.read_text())["retries"]
    assert list(submitted.values()) == ["pairs_index"] * (1 + retries)
    assert _slurm_logs(work) == submitted  # failed jobs keep their SLURM log
    ctld = _ctld_jobs(cluster)
    assert all(ctld[job_id]["exit"] != 0 for job_id in submitted)
    assert not (work / "results" / "synth" / "pairs.parquet").exists()
