"""One pretraining run from its job record (inputs, settings, seed): the training data and its fingerprint, the
monitor, the trainer. Called by the ``pretrain`` rule (:mod:`.pipeline`) in its own process, or once per GPU
under ``torchrun`` (:mod:`.launch`)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch

from ..device import describe, resolve_device
from ..files import sha256_file
from ..layout import shards_root
from .settings import TrainConfig

log = logging.getLogger(__name__)

AFFECTNET_CLASSES = 8            # the expression classes the monitor scores (AffectNet's 0-7)
MONITOR_PER_CLASS = 60           # expression items per class (half reference, half query)
MONITOR_FRAMES_PER_TRACK = 4     # identity probe: frames per track
MONITOR_IDENTITIES = 64          # identity probe: at most this many identities (seeded choice)


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
    if job["monitor_items"]:
        expression = expression_set(job["monitor_items"], job["monitor_crops"], AFFECTNET_CLASSES,
                                    MONITOR_PER_CLASS, cfg.seed)
    identity = identity_set(data, MONITOR_FRAMES_PER_TRACK, cfg.seed, MONITOR_IDENTITIES)
    if identity is None:
        log.warning("monitor: no identity has two tracks, so identity accuracy is not measured")
    return Monitor(expression, identity, job["view"]["resize"], job["view"]["crop"])


def train(job: dict) -> None:
    """Run one pretraining job (``job``: input files, output folder, training settings, seed, corpus; made by
    :func:`sslfer.train.pipeline.pretrain`)."""
    from .data import TrainingData
    from .trainer import Trainer

    cfg = TrainConfig.from_config(job["settings"], job["seed"], job["checkpoint_every"], job["monitor_every"])
    cfg.distribution = job["distribution"]
    torch.set_num_threads(job["threads"])
    v = cfg.variant
    data = TrainingData(job["pairs"], shards_root(job["frames"]),
                        shards_root(job["swap_tables"]) if v.face_swap else None,
                        shards_root(job["descriptors"]) if v.mask_fn != "off" else None)
    if v.face_swap and not data.has_swaps:
        log.warning("variant %s uses FaceSwap but no swap succeeded: positives stay unswapped", job["variant"])
    data_digest = training_data_digest(job["data_files"], Path(job["pairs"]).parent)
    log.info("corpus %s, variant %s: %s; %d usable frames; settings digest %s, training-data fingerprint %s",
             job["corpus"], job["variant"], v, data.index.n_frames, cfg.digest(), data_digest)
    record = {"variant": job["variant"], "pretrain": job["settings"], "seed": job["seed"], "corpus": job["corpus"]}
    local = os.environ.get("LOCAL_RANK")         # under torchrun: this rank's GPU
    device = f"cuda:{local}" if local is not None else resolve_device(job["device"])
    monitor = make_monitor(job, data, cfg) if cfg.monitor_every > 0 else None
    trainer = Trainer(data, cfg, job["out_dir"], device=str(device), data_digest=data_digest, monitor=monitor)
    log.info("%s", describe(trainer.device))
    trainer.fit(record)
