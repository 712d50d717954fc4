# The TimeAug/HardNeg pairs index (sslfer.pairs) and the summary of everything the trainer precomputes
# (pairs, face swaps, MaskFN descriptors).


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


rule pairs_summary:
    input:
        pairs="results/{corpus}/pairs.parquet",
        swaps=shard_swap_tables,
        descriptors=shard_descriptors,
    output:
        summary="results/{corpus}/pairs_summary.json",
    log:
        "logs/{corpus}/pairs_summary.log",
    conda:
        ENV
    script:
        "../scripts/pairs.py"
