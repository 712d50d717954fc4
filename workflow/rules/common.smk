# Shared definitions: the config is validated in the Snakefile before this file is read.

SYNTH = config["synth"]["root"]
ENV = "../../envs/sslfer.yaml"


def synth_outputs():
    """Every file the synth rules promise (the inputs of rule `synth`)."""
    return [
        f"{SYNTH}/groundtruth/videos.parquet",
        f"{SYNTH}/groundtruth/affectnet.parquet",
        f"{SYNTH}/groundtruth/fer2013.parquet",
        f"{SYNTH}/groundtruth/lfw.parquet",
        "results/qc/synth_contact_sheet.png",
    ]
