"""Rules eval_prepare / eval_features / eval_corpus_features / eval_linear / identity_leak / default_result /
ablation (thin wrapper around sslfer.evaluate.pipeline)."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP: see scripts/pretrain.py

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (works without `pip install -e .`)

from sslfer.evaluate import pipeline  # noqa: E402
from sslfer.rulelog import rule_log  # noqa: E402

sm = snakemake  # noqa: F821
with rule_log(sm.log[0]):
    pipeline.run_rule(sm.rule, dict(sm.input.items()), dict(sm.output.items()), dict(sm.params.items()),
                      dict(sm.wildcards.items()), sm.threads, sm.config)
