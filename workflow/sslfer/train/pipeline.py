"""Entry point of the pretraining rule: config section → :class:`TrainConfig`, one process or ``torchrun``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import torch

from ..files import sha256_file
from ..device import describe, require_gpus, resolve_device
from .settings import TrainConfig, Variant

log = logging.getLogger(__name__)

AFFECTNET_CLASSES = 8            # the expression classes the monitor scores (AffectNet's 0-7)
MONITOR_PER_CLASS = 60           # expression items per class (half reference, half query)
MONITOR_FRAMES_PER_TRACK = 4     # identity probe: frames per track
MONITOR_IDENTITIES = 64          # identity probe: at most this many identities (seeded choice)


def train_config(settings: dict, seed: int, checkpoint_every: int = 50, monitor_every: int = 0) -> TrainConfig:
    """:class:`TrainConfig` from a run's training settings (the ``pretrain`` section's shaping keys with the chosen
    variant's switches under ``switches``; see ``pretrain_settings`` in ``workflow/rules/common.smk``). The
    schema has filled in every default; invalid combinations raise ``ValueError`` here."""
    aug, fn = settings["augment"], settings["mask_fn"]
    return TrainConfig(
        variant=Variant(**settings["switches"]), backbone=settings["backbone"], width=settings["width"],
        stem=settings["stem"], head_bn=settings["head_bn"], projection_dim=settings["projection_dim"],
        temperature=settings["temperature"],
        batch_tracks=settings["batch_tracks"], steps=settings["steps"], lr=settings["lr"],
        weight_decay=settings["weight_decay"], warmup_steps=settings["warmup_steps"], schedule=settings["schedule"],
        swap_p=settings["swap_p"], fn_threshold=fn["threshold"], fn_lambda=fn["lambda"], fn_attract=fn["attract"],
        resize=aug["resize"], crop=aug["crop"], scale=None if aug["scale"] is None else tuple(aug["scale"]),
        ratio=tuple(aug["ratio"]), flip_p=aug["flip_p"], jitter=tuple(aug["jitter"]), jitter_p=tuple(aug["jitter_p"]),
        blur_p=aug["blur_p"], blur_sigma=tuple(aug["blur_sigma"]), grey_p=aug["grey_p"],
        landmark_mask_p=aug["landmark_mask_p"], checkpoint_every=checkpoint_every, monitor_every=monitor_every,
        sync_bn=settings["sync_bn"], seed=seed)


def training_data_digest(files: list[str | Path], corpus_dir: str | Path) -> str:
    """Fingerprint of a run's training data: the content of every Parquet table it reads (manifest, pairs index,
    frame/swap tables, descriptors) and the size of every pixel array. The arrays are written by the same jobs as
    the tables beside them, whose rows (boxes, landmarks, transforms, statuses) pin down what the pixels are.
    Paths count relative to the corpus folder, so the digest does not depend on the working directory."""
    h = hashlib.sha256()
    for rel, f in sorted((Path(os.path.relpath(f, corpus_dir)).as_posix(), Path(f)) for f in files):
        h.update(rel.encode() + b"\0")
        h.update((sha256_file(f) if f.suffix == ".parquet" else f"size={f.stat().st_size}").encode() + b"\n")
    return h.hexdigest()[:16]


def make_monitor(job: dict, data, cfg: TrainConfig):
    """The run's :class:`~sslfer.train.monitor.Monitor`: the AffectNet-style training items (when the job has
    them) and held-out tracks of the training data, seen as the evaluation sees crops."""
    from .monitor import Monitor, expression_set, identity_set

    expression = None
    if job.get("monitor_items"):
        expression = expression_set(job["monitor_items"], job["monitor_crops"], AFFECTNET_CLASSES,
                                    MONITOR_PER_CLASS, cfg.seed)
    identity = identity_set(data, MONITOR_FRAMES_PER_TRACK, cfg.seed, MONITOR_IDENTITIES)
    if identity is None:
        log.warning("monitor: no identity has two tracks, so identity accuracy is not measured")
    return Monitor(expression, identity, job["view"]["resize"], job["view"]["crop"])


def train(job: dict) -> None:
    """Run one pretraining job (``job``: input files, output folder, training settings, seed, corpus)."""
    from .data import TrainingData
    from .trainer import Trainer

    cfg = train_config(job["settings"], job["seed"], job["checkpoint_every"], job.get("monitor_every", 0))
    cfg.distribution = job["distribution"]
    torch.set_num_threads(job["threads"])
    v = cfg.variant
    corpus_dir = Path(job["pairs"]).parent
    data = TrainingData(job["pairs"], corpus_dir / "frames", corpus_dir / "swaps" if v.face_swap else None,
                        corpus_dir / "descriptors" if v.mask_fn != "off" else None)
    if v.face_swap and not data.has_swaps:
        log.warning("variant %s uses FaceSwap but no swap succeeded: positives stay unswapped", job["variant"])
    data_digest = training_data_digest(job["data_files"], corpus_dir)
    log.info("corpus %s, variant %s: %s; %d usable frames; settings digest %s, training-data fingerprint %s",
             job["corpus"], job["variant"], v, data.index.n_frames, cfg.digest(), data_digest)
    record = {"variant": job["variant"], "pretrain": job["settings"], "seed": job["seed"], "corpus": job["corpus"]}
    local = os.environ.get("LOCAL_RANK")         # under torchrun: this rank's GPU
    device = f"cuda:{local}" if local is not None else resolve_device(job["device"])
    monitor = make_monitor(job, data, cfg) if cfg.monitor_every > 0 else None
    trainer = Trainer(data, cfg, job["out_dir"], device=str(device), data_digest=data_digest, monitor=monitor)
    log.info("%s", describe(trainer.device))
    trainer.fit(record)


def run_pretrain(inputs: dict, outputs: dict, params: dict, wildcards: dict, threads: int = 1,
                 checkpoint_every: int = 50, monitor_every: int = 0, view: dict | None = None) -> None:
    """The ``pretrain`` rule: train in this process, or under ``torchrun`` when more than one GPU is asked for."""
    out_dir = Path(outputs["encoder"]).parent
    files = [inputs["pairs"], inputs["manifest"]] + [f for k in ("frames", "crops", "swap_tables", "swaps",
                                                               "descriptors") for f in inputs.get(k, [])]
    job = {"pairs": inputs["pairs"], "data_files": [str(f) for f in files], "out_dir": str(out_dir),
           "settings": params["settings"], "variant": params["variant"], "seed": params["seed"],
           "distribution": params["distribution"], "corpus": wildcards["corpus"], "threads": threads,
           "checkpoint_every": checkpoint_every, "device": params["device"], "monitor_every": monitor_every,
           "monitor_items": inputs.get("monitor_items"), "monitor_crops": inputs.get("monitor_crops"),
           "view": view}
    gpus = params["settings"]["gpus"]
    require_gpus(gpus)           # pretrain.gpus > 0 without a GPU is an error, never a silent CPU run
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


def run_random_encoder(outputs: dict, params: dict) -> None:
    """The ``random_encoder`` rule: an untrained encoder (the ablation's floor)."""
    from .model import random_encoder

    random_encoder(outputs["encoder"], params["backbone"], params["seed"], {"variant": "random", "seed": params["seed"]},
                   width=params["width"], stem=params["stem"])
    log.info("untrained %s encoder (seed %d) → %s", params["backbone"], params["seed"], outputs["encoder"])
