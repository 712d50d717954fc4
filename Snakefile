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
    # the main process also checks the inputs' contents (CSV rows, dataset lists, model files); a job re-reading
    # this file (on a cluster node) need not again
    prepare_config(config, Path(workflow.basedir) / "config" / "schema.yaml", check_inputs=workflow.is_main_process)
except ConfigError as err:
    raise WorkflowError(str(err))


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/swap.smk"
include: "workflow/rules/descriptors.smk"
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
        synth_outputs() if uses_synth() else [],
        f"results/{CORPUS}/preprocess_summary.json",
        f"results/qc/{CORPUS}_crops.png",
        f"results/{CORPUS}/pairs_summary.json",
        f"results/qc/{CORPUS}_swaps.png",
        f"results/{CORPUS}/pretrain/{config['pretrain']['variant']}/encoder.pt",
        expand("results/{dataset}_linear.json", dataset=EVAL_DATASETS),
        f"results/{CORPUS}/eval/{config['pretrain']['variant']}/identity_leak.json",
        expand("results/{corpus}/figures/{run}/{name}.png", corpus=CORPUS, run=config["pretrain"]["variant"],
               name=["training", "affectnet_confusion", "fer2013_confusion", "embedding"]),
