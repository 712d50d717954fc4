# sslfer — self-supervised facial-expression learning (Shu et al., BMVC 2022) as a Snakemake workflow.
# Usage: see README.md. The config is validated (schema + paths) before any rule is defined.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from snakemake.exceptions import WorkflowError
from sslfer.config import ConfigError, prepare_config


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


try:
    prepare_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err))


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    synth,
    synth_contact_sheet,
    preprocess_summary,
    preprocess_qc,
    swap_qc,
    pairs_summary,
    default_result,
    ablation,
    random_encoder,


rule all:
    input:
        synth_outputs(),
        f"results/{config['corpus']}/preprocess_summary.json",
        f"results/qc/{config['corpus']}_crops.png",
        f"results/{config['corpus']}/pairs_summary.json",
        f"results/qc/{config['corpus']}_swaps.png",
        f"results/pretrain/{config['pretrain']['variant']}/encoder.pt",
        expand("results/{dataset}_linear.json", dataset=EVAL_DATASETS),
        f"results/eval/{config['pretrain']['variant']}/identity_leak.json",
        expand("results/figures/{run}/{name}.png", run=config["pretrain"]["variant"],
               name=["training", "affectnet_confusion", "fer2013_confusion", "embedding"]),
