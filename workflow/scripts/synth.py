"""Rules synth_videos / synth_affectnet / synth_fer2013 / synth_lfw / synth_contact_sheet (thin wrapper)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # noqa: F821  (works without `pip install -e .`)

from sslfer.rulelog import rule_log  # noqa: E402
from sslfer.synth import corpus  # noqa: E402
from sslfer.synth.contact_sheet import write_contact_sheet  # noqa: E402

sm = snakemake  # noqa: F821
with rule_log(sm.log[0]) as log:
    what = sm.params.what
    if what == "contact_sheet":
        write_contact_sheet(sm.output[0], list(range(sm.params.cfg)), sm.params.seed)
        summary = {"identities": sm.params.cfg}
    else:
        writer = {"videos": corpus.write_videos, "affectnet": corpus.write_affectnet,
                  "fer2013": corpus.write_fer2013, "lfw": corpus.write_lfw}[what]
        root = Path(sm.output.gt).parents[1]  # <root>/groundtruth/<what>.parquet
        summary = writer(root, dict(sm.params.cfg), sm.params.seed, workers=sm.threads)
    log.info("synth %s done: %s", what, summary)
