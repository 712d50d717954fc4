"""Entry point of the pretraining rule: config section → :class:`TrainConfig`, one process or ``torchrun``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import torch

from .trainer import TrainConfig, Variant

log = logging.getLogger(__name__)


def train_config(pre: dict, variant: str, seed: int) -> TrainConfig:
    """:class:`TrainConfig` from the ``pretrain`` config section and a variant name."""
    aug, fn = pre["augment"], pre["mask_fn"]
    return TrainConfig(
        variant=Variant(**pre["variants"][variant]), backbone=pre["backbone"], projection_dim=pre["projection_dim"],
        temperature=pre["temperature"], batch_tracks=pre["batch_tracks"], steps=pre["steps"], lr=pre["lr"],
        weight_decay=pre["weight_decay"], warmup_steps=pre["warmup_steps"], schedule=pre["schedule"],
        swap_p=pre["swap_p"], fn_threshold=fn["threshold"], fn_lambda=fn["lambda"], fn_attract=fn["attract"],
        resize=aug["resize"], crop=aug["crop"], landmark_mask_p=aug["landmark_mask_p"],
        checkpoint_every=pre["checkpoint_every"], sync_bn=pre["sync_bn"], seed=seed)


def train(job: dict) -> None:
    """Run one pretraining job (``job``: paths, the pretrain section, variant, seed, pairs distribution)."""
    from .data import TrainingData
    from .trainer import Trainer

    cfg = train_config(job["pretrain"], job["variant"], job["seed"])
    cfg.distribution = job.get("distribution", cfg.distribution)
    torch.set_num_threads(job["pretrain"]["threads"])
    v = cfg.variant
    data = TrainingData(job["pairs"], job["frames_dir"], job["swaps_dir"] if v.face_swap else None,
                        job["descriptors_dir"] if v.mask_fn != "off" else None)
    if v.face_swap and not data.has_swaps:
        log.warning("variant %s uses FaceSwap but no swap succeeded: positives stay unswapped", job["variant"])
    log.info("variant %s: %s; %d usable frames; config digest %s", job["variant"], v, data.index.n_frames, cfg.digest())
    record = {"variant": job["variant"], "pretrain": job["pretrain"], "seed": job["seed"], "corpus": job["corpus"]}
    Trainer(data, cfg, job["out_dir"]).fit(record)


def run_pretrain(inputs: dict, outputs: dict, params: dict, wildcards: dict) -> None:
    """The ``pretrain`` rule: train in this process, or under ``torchrun`` when more than one GPU is asked for;
    the ``random_encoder`` rule: save an untrained encoder (the ablation's floor)."""
    if "pretrain" not in params:
        from .model import random_encoder

        random_encoder(outputs["encoder"], params["backbone"], params["seed"],
                       {"variant": "random", "seed": params["seed"]})
        log.info("untrained %s encoder (seed %d) → %s", params["backbone"], params["seed"], outputs["encoder"])
        return
    out_dir = Path(outputs["encoder"]).parent
    job = {"pairs": inputs["pairs"], "frames_dir": str(Path(inputs["pairs"]).parent / "frames"),
           "swaps_dir": str(Path(inputs["pairs"]).parent / "swaps"),
           "descriptors_dir": str(Path(inputs["pairs"]).parent / "descriptors"), "out_dir": str(out_dir),
           "pretrain": params["pretrain"], "variant": params["variant"], "seed": params["seed"],
           "distribution": params["distribution"], "corpus": params["corpus"]}
    gpus = params["pretrain"]["gpus"]
    if gpus <= 1:
        train(job)
        return
    job_file = out_dir / "job.json"
    out_dir.mkdir(parents=True, exist_ok=True)
    job_file.write_text(json.dumps(job, indent=2))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
           "-m", "sslfer.train.launch", str(job_file)]
    log.info("starting DDP on %d GPUs: %s", gpus, " ".join(cmd))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(cmd, check=True, env=env)
