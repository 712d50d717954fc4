# Contrastive pretraining (sslfer.train), one job per corpus and method variant (and seed). An encoder lives under
# the corpus it was trained on. checkpoint.pt and metrics.jsonl sit beside encoder.pt but are not declared
# outputs, so that Snakemake does not delete them before a rerun: the job resumes from checkpoint.pt when its
# settings digest and training-data fingerprint match, and moves it aside otherwise.


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        encoder="results/{corpus}/pretrain/{run}/encoder.pt",
    wildcard_constraints:
        run=VARIANT_RUN,
    params:
        settings=pretrain_settings,
        variant=lambda wildcards: run_variant(wildcards.run),
        seed=lambda wildcards: run_seed(wildcards.run),
        distribution=config["pairs"]["distribution"],
        device=config["device"],
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=4000,
        gpu=config["pretrain"]["gpus"],
    log:
        "logs/{corpus}/pretrain/{run}.log",
    benchmark:
        "results/benchmarks/{corpus}/pretrain/{run}.tsv"
    conda:
        ENV
    script:
        "../scripts/pretrain.py"


rule random_encoder:
    output:
        encoder="results/{corpus}/pretrain/{run}/encoder.pt",
    wildcard_constraints:
        run=RANDOM_RUN,
    params:
        backbone=config["pretrain"]["backbone"],
        width=config["pretrain"]["width"],
        stem=config["pretrain"]["stem"],
        seed=lambda wildcards: run_seed(wildcards.run),
    log:
        "logs/{corpus}/pretrain/{run}.log",
    conda:
        ENV
    script:
        "../scripts/pretrain.py"
