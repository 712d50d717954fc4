"""Rules of workflow/rules/preprocess.smk: each runs the function named after it in sslfer.preprocess.pipeline."""

import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))  # sslfer without `pip install -e .`
from sslfer.rulejob import run; run(globals()["snakemake"], "preprocess")  # the job object of Snakemake's preamble
