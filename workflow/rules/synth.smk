# The embedded synthetic corpus (sslfer.synth): videos in the VoxCeleb layout, AffectNet-, FER2013- and
# LFW-style evaluation sets, per-frame/per-image ground truth, and a QC contact sheet.


rule synth_videos:
    output:
        gt=f"{SYNTH}/groundtruth/videos.parquet",
        identities=f"{SYNTH}/groundtruth/videos_identities.parquet",
        meta=f"{SYNTH}/voxceleb/vox1_meta.csv",
    params:
        cfg=canonical(config["synth"]["videos"]),
        seed=config["seed"],
    threads: 2
    log:
        f"logs/synth/{SYNTH_KEY}/videos.log",
    benchmark:
        f"results/benchmarks/synth_{SYNTH_KEY}_videos.tsv"
    conda:
        ENV
    script:
        "../scripts/synth.py"


rule synth_affectnet:
    output:
        gt=f"{SYNTH}/groundtruth/affectnet.parquet",
        identities=f"{SYNTH}/groundtruth/affectnet_identities.parquet",
        training=f"{SYNTH}/affectnet/Manually_Annotated_file_lists/training.csv",
        validation=f"{SYNTH}/affectnet/Manually_Annotated_file_lists/validation.csv",
    params:
        cfg=canonical(config["synth"]["affectnet"]),
        seed=config["seed"],
    threads: 2
    log:
        f"logs/synth/{SYNTH_KEY}/affectnet.log",
    benchmark:
        f"results/benchmarks/synth_{SYNTH_KEY}_affectnet.tsv"
    conda:
        ENV
    script:
        "../scripts/synth.py"


rule synth_fer2013:
    output:
        gt=f"{SYNTH}/groundtruth/fer2013.parquet",
        identities=f"{SYNTH}/groundtruth/fer2013_identities.parquet",
        csv=f"{SYNTH}/fer2013/fer2013.csv",
    params:
        cfg=canonical(config["synth"]["fer2013"]),
        seed=config["seed"],
    threads: 2
    log:
        f"logs/synth/{SYNTH_KEY}/fer2013.log",
    benchmark:
        f"results/benchmarks/synth_{SYNTH_KEY}_fer2013.tsv"
    conda:
        ENV
    script:
        "../scripts/synth.py"


rule synth_lfw:
    output:
        gt=f"{SYNTH}/groundtruth/lfw.parquet",
        identities=f"{SYNTH}/groundtruth/lfw_identities.parquet",
        pairs=f"{SYNTH}/lfw/lfw_home/pairs.txt",
        dev_train=f"{SYNTH}/lfw/lfw_home/pairsDevTrain.txt",
        dev_test=f"{SYNTH}/lfw/lfw_home/pairsDevTest.txt",
    params:
        cfg=canonical(config["synth"]["lfw"]),
        seed=config["seed"],
    threads: 2
    log:
        f"logs/synth/{SYNTH_KEY}/lfw.log",
    benchmark:
        f"results/benchmarks/synth_{SYNTH_KEY}_lfw.tsv"
    conda:
        ENV
    script:
        "../scripts/synth.py"


rule synth_contact_sheet:
    output:
        sheet=report("results/qc/synth_contact_sheet.png", caption="../report/qc.rst", category="Quality control"),
    params:
        identities=config["synth"]["contact_sheet_identities"],
        seed=config["seed"],
    log:
        f"logs/synth/{SYNTH_KEY}/contact_sheet.log",
    conda:
        ENV
    script:
        "../scripts/synth.py"


rule synth:
    input:
        synth_outputs(),
