# Everything the trainer needs, precomputed once (sslfer.pairs, sslfer.swap, sslfer.descriptors):
# the TimeAug/HardNeg index, face swaps per shard, MaskFN descriptors per shard, and their summary.


rule pairs_index:
    input:
        manifest="results/{corpus}/videos.parquet",
        shards=shard_frames,
    output:
        pairs="results/{corpus}/pairs.parquet",
    params:
        pairs=canonical(config["pairs"]),
    log:
        "logs/{corpus}/pairs_index.log",
    conda:
        ENV
    script:
        "../scripts/pairs.py"


rule swap_shard:
    input:
        shards=shard_frames,
        crops=per_shard("results/{corpus}/frames/shard={shard}/crops.npy"),
    output:
        swaps="results/{corpus}/swaps/shard={shard}/swaps.parquet",
        images="results/{corpus}/swaps/shard={shard}/swaps.npy",
    params:
        swap=canonical(config["swap"]),
        seed=config["seed"],
    resources:
        mem_mb=2000,
    log:
        "logs/{corpus}/swaps/shard={shard}.log",
    benchmark:
        "results/benchmarks/{corpus}/swap_shard={shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/pairs.py"


rule descriptors_shard:
    input:
        frames="results/{corpus}/frames/shard={shard}/frames.parquet",
        crops="results/{corpus}/frames/shard={shard}/crops.npy",
    output:
        descriptors="results/{corpus}/descriptors/shard={shard}/descriptors.parquet",
    params:
        descriptors=canonical(config["descriptors"]),
        device=config["device"] if config["descriptors"]["backend"] == "resnet18_imagenet" else None,
    resources:
        mem_mb=2000,
    log:
        "logs/{corpus}/descriptors/shard={shard}.log",
    benchmark:
        "results/benchmarks/{corpus}/descriptors_shard={shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/pairs.py"


rule swap_qc:
    input:
        swaps=per_shard("results/{corpus}/swaps/shard={shard}/swaps.parquet"),
        shards=shard_frames,
    output:
        sheet=report("results/qc/{corpus}_swaps.png", caption="../report/qc.rst", category="Quality control"),
    params:
        seed=config["seed"],
    log:
        "logs/{corpus}/swap_qc.log",
    conda:
        ENV
    script:
        "../scripts/pairs.py"


rule pairs_summary:
    input:
        pairs="results/{corpus}/pairs.parquet",
        swaps=per_shard("results/{corpus}/swaps/shard={shard}/swaps.parquet"),
        descriptors=per_shard("results/{corpus}/descriptors/shard={shard}/descriptors.parquet"),
    output:
        summary="results/{corpus}/pairs_summary.json",
    log:
        "logs/{corpus}/pairs_summary.log",
    conda:
        ENV
    script:
        "../scripts/pairs.py"
