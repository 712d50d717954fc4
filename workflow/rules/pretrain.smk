# Contrastive pretraining (sslfer.train), one job per method variant; resumes from checkpoint.pt after a kill.
# checkpoint.pt and metrics.jsonl sit beside encoder.pt but are not declared outputs, so that Snakemake does
# not delete them before a rerun (that is what makes the rerun resume).


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        encoder="results/pretrain/{run}/encoder.pt",
    wildcard_constraints:
        run=VARIANT_RUN,
    params:
        pretrain=config["pretrain"],
        variant=lambda wildcards: run_variant(wildcards.run),
        seed=lambda wildcards: run_seed(wildcards.run),
        distribution=config["pairs"]["distribution"],
        corpus=config["corpus"],
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=4000,
        gpu=config["pretrain"]["gpus"],
    log:
        "logs/pretrain/{run}.log",
    benchmark:
        "results/benchmarks/pretrain/{run}.tsv"
    conda:
        ENV
    script:
        "../scripts/pretrain.py"


rule random_encoder:
    output:
        encoder="results/pretrain/{run}/encoder.pt",
    wildcard_constraints:
        run=RANDOM_RUN,
    params:
        backbone=config["pretrain"]["backbone"],
        seed=lambda wildcards: run_seed(wildcards.run),
    log:
        "logs/pretrain/{run}.log",
    conda:
        ENV
    script:
        "../scripts/pretrain.py"
