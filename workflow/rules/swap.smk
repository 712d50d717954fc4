# Face swaps per shard (sslfer.swap): each frame with a crop onto donors of other identities, and a QC sheet.


rule swap_shard:
    input:
        shards=shard_frames,
        crops=shard_crops,
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
        "../scripts/swap.py"


rule swap_qc:
    input:
        swaps=shard_swap_tables,
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
        "../scripts/swap.py"
