"""Rule pretrain (thin wrapper around sslfer.train.pipeline)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (works without `pip install -e .`)

from sslfer.rulelog import rule_log  # noqa: E402
from sslfer.train.pipeline import run_pretrain  # noqa: E402

sm = snakemake  # noqa: F821
with rule_log(sm.log[0]):
    run_pretrain(dict(sm.input.items()), dict(sm.output.items()), dict(sm.params.items()), dict(sm.wildcards.items()))
