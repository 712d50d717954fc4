"""Evaluation: dataset readers, features, probes, reports."""
