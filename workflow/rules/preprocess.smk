# Preprocessing (sslfer.preprocess): manifest → one job per shard → per-corpus summary.
# The shards are read from the manifest (a checkpoint), never globbed at DAG-build time.


wildcard_constraints:
    corpus="|".join(re.escape(name) for name in config["corpora"]),
    shard=r"\d{5}",


checkpoint preprocess_manifest:
    input:
        corpus_inputs,
    output:
        manifest="results/{corpus}/videos.parquet",
    params:
        corpus=lambda wildcards: canonical(config["corpora"][wildcards.corpus]),
        pre=canonical({k: config["preprocess"][k] for k in ("shard_size", "min_track_s")}),
    threads: 4  # files probed at a time (I/O bound; capped by --cores)
    log:
        "logs/{corpus}/preprocess_manifest.log",
    conda:
        ENV
    script:
        "../scripts/preprocess.py"


rule preprocess_shard:
    input:
        manifest="results/{corpus}/videos.parquet",
    output:
        frames="results/{corpus}/frames/shard={shard}/frames.parquet",
        crops="results/{corpus}/frames/shard={shard}/crops.npy",
    params:
        pre=canonical({k: v for k, v in config["preprocess"].items() if k not in ("shard_size", "min_track_s")}),
        device=face_device(),
    resources:
        mem_mb=2000,
    log:
        "logs/{corpus}/frames/shard={shard}.log",
    benchmark:
        "results/benchmarks/{corpus}/preprocess_shard={shard}.tsv"
    conda:
        ENV
    script:
        "../scripts/preprocess.py"


rule preprocess_summary:
    input:
        manifest="results/{corpus}/videos.parquet",
        shards=shard_frames,
    output:
        summary="results/{corpus}/preprocess_summary.json",
    log:
        "logs/{corpus}/preprocess_summary.log",
    conda:
        ENV
    script:
        "../scripts/preprocess.py"


rule preprocess_qc:
    input:
        shards=shard_frames,
    output:
        sheet=report("results/qc/{corpus}_crops.png", caption="../report/qc.rst", category="Quality control"),
    params:
        seed=config["seed"],
    log:
        "logs/{corpus}/preprocess_qc.log",
    conda:
        ENV
    script:
        "../scripts/preprocess.py"
