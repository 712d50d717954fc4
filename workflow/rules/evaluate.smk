# Evaluation (sslfer.evaluate): evaluation images → aligned crops (once per dataset, shared by every corpus);
# per corpus and pretraining run: frozen features (cached), linear probes, identity leak; the configured corpus's
# default variant's results at results/; the ablation table over variants × seeds; figures for `snakemake --report`.
# Only what shapes an output is a param (batch sizes and threads are read from the config at run time); the
# device is one, since GPU and CPU results agree only to float tolerance.


rule eval_prepare:
    input:
        eval_dataset_inputs,
    output:
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
    wildcard_constraints:
        dataset="affectnet|fer2013",
    params:
        dataset=lambda wildcards: canonical(config["datasets"][wildcards.dataset]),
        faces=face_settings(),
        device=face_device(),
    threads: config["evaluation"]["prepare_threads"]
    resources:
        mem_mb=4000,
    log:
        "logs/eval/prepare_{dataset}.log",
    benchmark:
        "results/benchmarks/eval/prepare_{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_prepare_lfw:
    input:
        eval_dataset_inputs,
    output:
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
        pairs="results/eval/data/{dataset}/pairs.parquet",
    wildcard_constraints:
        dataset="lfw",
    params:
        dataset=lambda wildcards: canonical(config["datasets"][wildcards.dataset]),
        faces=face_settings(),
        device=face_device(),
    threads: config["evaluation"]["prepare_threads"]
    resources:
        mem_mb=4000,
    log:
        "logs/eval/prepare_{dataset}.log",
    benchmark:
        "results/benchmarks/eval/prepare_{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_features:
    input:
        encoder="results/{corpus}/pretrain/{run}/encoder.pt",
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
    output:
        features="results/{corpus}/eval/{run}/features/{dataset}.parquet",
    wildcard_constraints:
        dataset="|".join(EVAL_DATASETS),
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        view=feature_settings(),
        device=config["device"],
    threads: config["pretrain"]["threads"]
    log:
        "logs/{corpus}/eval/{run}/features_{dataset}.log",
    benchmark:
        "results/benchmarks/{corpus}/eval/{run}/features_{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_corpus_features:
    input:
        encoder="results/{corpus}/pretrain/{run}/encoder.pt",
        shards=shard_frames,
    output:
        features="results/{corpus}/eval/{run}/features/corpus.parquet",
    wildcard_constraints:
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        view=feature_settings(),
        device=config["device"],
        frames_per_track=config["evaluation"]["corpus_frames_per_track"],
    threads: config["pretrain"]["threads"]
    log:
        "logs/{corpus}/eval/{run}/features_corpus.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_linear:
    input:
        unpack(lfw_pairs_input),
        item_table="results/eval/data/{dataset}/items.parquet",
        features="results/{corpus}/eval/{run}/features/{dataset}.parquet",
    output:
        result="results/{corpus}/eval/{run}/{dataset}_linear.json",
    wildcard_constraints:
        dataset="|".join(EVAL_DATASETS),
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        lfw_min_images=lambda wildcards: config["evaluation"]["lfw_min_images"] if wildcards.dataset == "lfw" else None,
        dataset_path=lambda wildcards: dataset_path(wildcards.dataset),
        seed=config["seed"],
    log:
        "logs/{corpus}/eval/{run}/linear_{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule identity_leak:
    input:
        features="results/{corpus}/eval/{run}/features/corpus.parquet",
    output:
        result="results/{corpus}/eval/{run}/identity_leak.json",
    wildcard_constraints:
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        seed=config["seed"],
    log:
        "logs/{corpus}/eval/{run}/identity_leak.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule default_result:
    input:
        result=f"results/{CORPUS}/eval/{config['pretrain']['variant']}/{{dataset}}_linear.json",
    output:
        result="results/{dataset}_linear.json",
    wildcard_constraints:
        dataset="|".join(EVAL_DATASETS),
    log:
        "logs/eval/default_{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule ablation:
    input:
        unpack(ablation_inputs),
    output:
        table="results/ablation.md",
        json="results/ablation.json",
        chart=report("results/ablation.png", caption="../report/ablation.rst", category="Ablation"),
    params:
        runs=ablation_runs(),
        variants=config["pretrain"]["variants"],  # in the config's order: the table's rows
        seeds=config["evaluation"]["seeds"],
        corpus=CORPUS,
    log:
        "logs/eval/ablation.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_finetune:
    input:
        encoder="results/{corpus}/pretrain/{run}/encoder.pt",
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
    output:
        result="results/{corpus}/eval/{run}/{dataset}_finetune.json",
    wildcard_constraints:
        dataset="affectnet|fer2013",
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        view=feature_settings(),
        device=config["device"],
        finetune=canonical(config["evaluation"]["finetune"]),
        dataset_path=lambda wildcards: dataset_path(wildcards.dataset),
        seed=config["seed"],
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=4000,
    log:
        "logs/{corpus}/eval/{run}/finetune_{dataset}.log",
    benchmark:
        "results/benchmarks/{corpus}/eval/{run}/finetune_{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
