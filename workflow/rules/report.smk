# Figures for `snakemake --report report.html` (the QC sheets and the ablation chart are flagged where made).


rule figures:
    input:
        encoder="results/{corpus}/pretrain/{run}/encoder.pt",
        affectnet="results/{corpus}/eval/{run}/affectnet_linear.json",
        fer2013="results/{corpus}/eval/{run}/fer2013_linear.json",
        affectnet_items="results/eval/data/affectnet/items.parquet",
        affectnet_features="results/{corpus}/eval/{run}/features/affectnet.parquet",
        corpus_features="results/{corpus}/eval/{run}/features/corpus.parquet",
    output:
        training=report("results/{corpus}/figures/{run}/training.png", caption="../report/figures.rst",
                        category="Figures"),
        affectnet=report("results/{corpus}/figures/{run}/affectnet_confusion.png", caption="../report/figures.rst",
                         category="Figures"),
        fer2013=report("results/{corpus}/figures/{run}/fer2013_confusion.png", caption="../report/figures.rst",
                       category="Figures"),
        embedding=report("results/{corpus}/figures/{run}/embedding.png", caption="../report/figures.rst",
                         category="Figures"),
    wildcard_constraints:
        run=VARIANT_RUN,
    log:
        "logs/{corpus}/figures/{run}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
