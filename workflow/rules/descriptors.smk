# MaskFN eye/mouth descriptors per shard (sslfer.descriptors).


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
        "../scripts/descriptors.py"
