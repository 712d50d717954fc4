"""Rules pretrain / random_encoder (thin wrappers around sslfer.train.pipeline)."""

import os
import sys
from pathlib import Path

# Before torch loads OpenMP (libgomp reads this once, at load): threads that reach a barrier sleep instead of
# spinning. On cores shared with other jobs the spinning made pretraining steps 1.4-5x slower; the numbers
# are unchanged (benchmarks/pretrain_step.py, setup "passive"). An OMP_WAIT_POLICY set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (works without `pip install -e .`)

from sslfer.rulelog import rule_log  # noqa: E402
from sslfer.train import pipeline  # noqa: E402

sm = snakemake  # noqa: F821
with rule_log(sm.log[0]):
    if sm.rule == "random_encoder":
        pipeline.run_random_encoder(dict(sm.output.items()), dict(sm.params.items()))
    else:   # threads and the checkpoint / monitor intervals do not shape the encoder: not params (no rerun on change)
        pipeline.run_pretrain(dict(sm.input.items()), dict(sm.output.items()), dict(sm.params.items()),
                              dict(sm.wildcards.items()), threads=sm.threads,
                              checkpoint_every=sm.config["pretrain"]["checkpoint_every"],
                              monitor_every=sm.config["pretrain"]["monitor_every"],
                              view=sm.config["evaluation"]["view"])
