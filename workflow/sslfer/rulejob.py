"""The one entry of every rule script: ``run(snakemake, stage)`` calls ``sslfer.<stage>.pipeline.<rule>(job)``.

Each stage's ``pipeline.py`` has one function per rule of its ``.smk`` file, named after the rule; it gets the
job as a :class:`Job` (the rule's named inputs, outputs, params and wildcards, its threads and the workflow
config, for the settings that do not shape outputs and so are not params). The function runs inside the rule
log (:func:`sslfer.rulelog.rule_log`).

Example (``workflow/scripts/swap.py``)::

    run(snakemake, "swap")      # rule swap_qc → sslfer.swap.pipeline.swap_qc(job)
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from .rulelog import rule_log


@dataclass(frozen=True)
class Job:
    """What a rule function reads: the rule's name, its named inputs, outputs, params and wildcards, its threads,
    the workflow config."""

    rule: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    params: dict[str, Any]
    wildcards: dict[str, str]
    threads: int = 1
    config: dict[str, Any] | None = None


def run(smk: Any, stage: str) -> None:
    """Run Snakemake job ``smk`` (a script's ``snakemake`` object) with the function of stage ``stage`` named
    after its rule, logging to the rule's log file."""
    # Before torch loads OpenMP (libgomp reads this once, at load): threads that reach a barrier sleep instead
    # of spinning, which matters on cores shared with other jobs; results do not depend on it. A value set by
    # the user wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    pipeline = importlib.import_module(f"sslfer.{stage}.pipeline")
    rule = getattr(pipeline, smk.rule)
    job = Job(smk.rule, dict(smk.input.items()), dict(smk.output.items()), dict(smk.params.items()),
              dict(smk.wildcards.items()), smk.threads, smk.config)
    with rule_log(smk.log[0]):
        rule(job)
