# Evaluation (sslfer.evaluate): evaluation images → aligned crops (once per dataset); per pretraining run:
# frozen features (cached), linear probes, identity leak; the default variant's results at results/; the
# ablation table over variants × seeds; figures for `snakemake --report`.


rule eval_prepare:
    input:
        eval_dataset_inputs,
    output:
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
    wildcard_constraints:
        dataset="affectnet|fer2013",
    params:
        dataset=lambda wildcards: config["datasets"][wildcards.dataset],
        pre=config["preprocess"],
        seed=config["seed"],
    threads: 2
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
        dataset=lambda wildcards: config["datasets"][wildcards.dataset],
        pre=config["preprocess"],
        seed=config["seed"],
    threads: 2
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
        encoder="results/pretrain/{run}/encoder.pt",
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
    output:
        features="results/eval/{run}/features/{dataset}.parquet",
    wildcard_constraints:
        dataset="|".join(EVAL_DATASETS),
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        augment=config["pretrain"]["augment"],
        evaluation=config["evaluation"],
        seed=config["seed"],
    threads: config["pretrain"]["threads"]
    log:
        "logs/eval/{run}/features_{dataset}.log",
    benchmark:
        "results/benchmarks/eval/{run}/features_{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_corpus_features:
    input:
        encoder="results/pretrain/{run}/encoder.pt",
        shards=shard_frames_of_config_corpus,
    output:
        features="results/eval/{run}/features/corpus.parquet",
    wildcard_constraints:
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        augment=config["pretrain"]["augment"],
        evaluation=config["evaluation"],
        seed=config["seed"],
    threads: config["pretrain"]["threads"]
    log:
        "logs/eval/{run}/features_corpus.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_linear:
    input:
        unpack(lfw_pairs_input),
        item_table="results/eval/data/{dataset}/items.parquet",
        features="results/eval/{run}/features/{dataset}.parquet",
    output:
        result="results/eval/{run}/{dataset}_linear.json",
    wildcard_constraints:
        dataset="|".join(EVAL_DATASETS),
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        evaluation=config["evaluation"],
        seed=config["seed"],
    log:
        "logs/eval/{run}/linear_{dataset}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule identity_leak:
    input:
        features="results/eval/{run}/features/corpus.parquet",
    output:
        result="results/eval/{run}/identity_leak.json",
    wildcard_constraints:
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        seed=config["seed"],
    log:
        "logs/eval/{run}/identity_leak.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule default_result:
    input:
        result=f"results/eval/{config['pretrain']['variant']}/{{dataset}}_linear.json",
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
        variants=config["pretrain"]["variants"],
        seeds=config["evaluation"]["seeds"],
    log:
        "logs/eval/ablation.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"


rule eval_finetune:
    input:
        encoder="results/pretrain/{run}/encoder.pt",
        item_table="results/eval/data/{dataset}/items.parquet",
        crops="results/eval/data/{dataset}/crops.npy",
    output:
        result="results/eval/{run}/{dataset}_finetune.json",
    wildcard_constraints:
        dataset="affectnet|fer2013",
        run=f"{VARIANT_RUN}|{RANDOM_RUN}",
    params:
        augment=config["pretrain"]["augment"],
        finetune=config["evaluation"]["finetune"],
        seed=config["seed"],
    threads: config["pretrain"]["threads"]
    resources:
        mem_mb=4000,
    log:
        "logs/eval/{run}/finetune_{dataset}.log",
    benchmark:
        "results/benchmarks/eval/{run}/finetune_{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
