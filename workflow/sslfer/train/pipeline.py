"""The pretraining rules (``workflow/rules/pretrain.smk``), one function per rule: a trained encoder (in this
process, or under ``torchrun`` when more than one GPU is asked for) and the untrained one (the ablation's floor)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from ..device import require_gpus
from ..rulejob import Job
from .run import train

log = logging.getLogger(__name__)

#: The pretrain rule's per-shard inputs, in the order the training-data fingerprint lists them.
SHARD_INPUTS = ("frames", "crops", "swap_tables", "swaps", "descriptors")


def pretrain(job: Job) -> None:
    """Train one run's encoder. Threads, the checkpoint and monitor intervals and the monitor's view come from
    the config, not params: they do not shape the encoder, so changing them reruns nothing."""
    inputs, params, config = job.inputs, job.params, job.config
    out_dir = Path(job.outputs["encoder"]).parent
    files = [inputs["pairs"], inputs["manifest"]] + [f for k in SHARD_INPUTS for f in inputs.get(k, [])]
    record = {"pairs": inputs["pairs"], "data_files": [str(f) for f in files], "out_dir": str(out_dir),
              "settings": params["settings"], "variant": params["variant"], "seed": params["seed"],
              "distribution": params["distribution"], "corpus": job.wildcards["corpus"], "threads": job.threads,
              "checkpoint_every": config["pretrain"]["checkpoint_every"], "device": params["device"],
              "monitor_every": config["pretrain"]["monitor_every"],
              "monitor_items": inputs.get("monitor_items"), "monitor_crops": inputs.get("monitor_crops"),
              "view": config["evaluation"]["view"],
              **{k: [str(f) for f in inputs.get(k, [])] for k in ("frames", "swap_tables", "descriptors")}}
    gpus = params["settings"]["gpus"]
    require_gpus(gpus)           # pretrain.gpus > 0 without a GPU is an error, never a silent CPU run
    if gpus <= 1:
        train(record)
        return
    job_file = out_dir / "job.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(record, indent=2))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "sslfer.train.launch", str(job_file)]
    log.info("starting DDP on %d GPUs: %s", gpus, " ".join(cmd))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(cmd, check=True, env=env)


def random_encoder(job: Job) -> None:
    """An untrained encoder (the ablation's floor)."""
    from .model import random_encoder as write_random_encoder

    p, out = job.params, job.outputs["encoder"]
    write_random_encoder(out, p["backbone"], p["seed"], {"variant": "random", "seed": p["seed"]}, width=p["width"],
                         stem=p["stem"])
    log.info("untrained %s encoder (seed %d) → %s", p["backbone"], p["seed"], out)
