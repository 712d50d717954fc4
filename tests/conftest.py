"""Shared fixtures: a tiny synthetic corpus generated once per test session by the real code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"


def tiny_synth_config() -> dict:
    """The ``synth`` section of tests/data/tiny.yaml with the schema defaults filled in."""
    from sslfer.config import prepare_config

    cfg = yaml.safe_load(TINY_CONFIG.read_text())
    return prepare_config(cfg, REPO / "config" / "schema.yaml", base=REPO)["synth"]


@pytest.fixture(scope="session")
def synth_cfg() -> dict:
    return tiny_synth_config()


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, synth_cfg) -> Path:
    """resources/synth-like tree of the tiny config, seed 0, rendered with 2 workers."""
    from sslfer.synth import corpus

    root = tmp_path_factory.mktemp("synth")
    corpus.write_videos(root, synth_cfg["videos"], seed=0, workers=2)
    corpus.write_affectnet(root, synth_cfg["affectnet"], seed=0, workers=2)
    corpus.write_fer2013(root, synth_cfg["fer2013"], seed=0, workers=2)
    corpus.write_lfw(root, synth_cfg["lfw"], seed=0, workers=2)
    return root
