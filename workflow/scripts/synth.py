"""Rules of workflow/rules/synth.smk: each runs the function named after it in sslfer.synth.pipeline."""

import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))  # sslfer without `pip install -e .`
from sslfer.rulejob import run; run(globals()["snakemake"], "synth")  # the job object of Snakemake's preamble
