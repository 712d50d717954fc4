# Figures for `snakemake --report report.html` (the QC sheets and the ablation chart are flagged where made).


rule figures:
    input:
        encoder="results/pretrain/{run}/encoder.pt",
        affectnet="results/eval/{run}/affectnet_linear.json",
        fer2013="results/eval/{run}/fer2013_linear.json",
        affectnet_items="results/eval/data/affectnet/items.parquet",
        affectnet_features="results/eval/{run}/features/affectnet.parquet",
        corpus_features="results/eval/{run}/features/corpus.parquet",
    output:
        training=report("results/figures/{run}/training.png", caption="../report/figures.rst", category="Figures"),
        affectnet=report("results/figures/{run}/affectnet_confusion.png", caption="../report/figures.rst",
                         category="Figures"),
        fer2013=report("results/figures/{run}/fer2013_confusion.png", caption="../report/figures.rst",
                       category="Figures"),
        embedding=report("results/figures/{run}/embedding.png", caption="../report/figures.rst", category="Figures"),
    wildcard_constraints:
        run=VARIANT_RUN,
    log:
        "logs/figures/{run}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
