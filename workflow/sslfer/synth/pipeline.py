"""The synth rules (``workflow/rules/synth.smk``), one function per rule: the synthetic corpus's videos, its three
evaluation sets and the QC contact sheet."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..rulejob import Job
from . import corpus
from .contact_sheet import write_contact_sheet

log = logging.getLogger(__name__)


def _write(job: Job, name: str, writer: Callable[..., dict]) -> None:
    """Write part ``name`` of the corpus under the synth root (the folder above ``groundtruth/``)."""
    root = Path(job.outputs["gt"]).parents[1]      # <root>/groundtruth/<name>.parquet
    summary = writer(root, dict(job.params["cfg"]), job.params["seed"], workers=job.threads)
    log.info("synth %s done: %s", name, summary)


def synth_videos(job: Job) -> None:
    """The talking-head videos in the VoxCeleb layout, their metadata and per-frame ground truth."""
    _write(job, "videos", corpus.write_videos)


def synth_affectnet(job: Job) -> None:
    """The AffectNet-style evaluation set."""
    _write(job, "affectnet", corpus.write_affectnet)


def synth_fer2013(job: Job) -> None:
    """The FER2013-style evaluation set."""
    _write(job, "fer2013", corpus.write_fer2013)


def synth_lfw(job: Job) -> None:
    """The LFW-style evaluation set."""
    _write(job, "lfw", corpus.write_lfw)


def synth_contact_sheet(job: Job) -> None:
    """The QC sheet of the first ``identities`` identities."""
    n = job.params["identities"]
    write_contact_sheet(job.outputs["sheet"], list(range(n)), job.params["seed"])
    log.info("synth contact_sheet done: %s", {"identities": n})
