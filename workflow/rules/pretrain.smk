# Contrastive pretraining (sslfer.train), one job per method variant; resumes from checkpoint.pt after a kill.
# checkpoint.pt and metrics.jsonl sit beside encoder.pt but are not declared outputs, so that Snakemake does
# not delete them before a rerun (that is what makes the rerun resume).


wildcard_constraints:
    variant="[A-Za-z0-9_-]+",


rule pretrain:
    input:
        unpack(pretrain_inputs),
    output:
        encoder="results/pretrain/{variant}/encoder.pt",
    params:
        pretrain=config["pretrain"],
        seed=config["seed"],
        distribution=config["pairs"]["distribution"],
        corpus=config["corpus"],
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=4000,
        gpu=config["pretrain"]["gpus"],
    log:
        "logs/pretrain/{variant}.log",
    benchmark:
        "results/benchmarks/pretrain/{variant}.tsv"
    conda:
        ENV
    script:
        "../scripts/pretrain.py"
