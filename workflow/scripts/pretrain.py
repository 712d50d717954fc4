"""Rules pretrain / random_encoder (thin wrappers around sslfer.train.pipeline)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (works without `pip install -e .`)

from sslfer.rulelog import rule_log  # noqa: E402
from sslfer.train import pipeline  # noqa: E402

sm = snakemake  # noqa: F821
with rule_log(sm.log[0]):
    if sm.rule == "random_encoder":
        pipeline.run_random_encoder(dict(sm.output.items()), dict(sm.params.items()))
    else:   # threads and checkpoint_every do not shape the encoder, so they are not params (no rerun on change)
        pipeline.run_pretrain(dict(sm.input.items()), dict(sm.output.items()), dict(sm.params.items()),
                              dict(sm.wildcards.items()), threads=sm.threads,
                              checkpoint_every=sm.config["pretrain"]["checkpoint_every"])
