"""sslfer — self-supervised facial-expression learning as a reproducible Snakemake workflow."""

__version__ = "0.1.0"
