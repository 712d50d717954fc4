"""Same seed → byte-identical files; another seed → different files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sslfer.synth import corpus


def _digest(root: Path, sub: str) -> dict[str, str]:
    base = root / sub
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tiny_corpus, synth_cfg, tmp_path):
    videos = dict(synth_cfg["videos"], identities=1, utterances_per_clip=1)
    corpus.write_videos(tmp_path / "a", videos, seed=0, workers=1)
    corpus.write_videos(tmp_path / "b", videos, seed=0, workers=2)
    a, b = _digest(tmp_path / "a", "voxceleb"), _digest(tmp_path / "b", "voxceleb")
    assert a and a == b
    assert _digest(tmp_path / "a", "groundtruth") == _digest(tmp_path / "b", "groundtruth")
    # the tiny corpus rendered the same first video: identical file
    first = sorted(k for k in a if k.endswith(".mp4"))[0]
    assert a[first] == hashlib.sha256((tiny_corpus / first).read_bytes()).hexdigest()

    corpus.write_affectnet(tmp_path / "a", synth_cfg["affectnet"], seed=0, workers=2)
    assert _digest(tmp_path / "a", "affectnet") == _digest(tiny_corpus, "affectnet")
    corpus.write_fer2013(tmp_path / "a", synth_cfg["fer2013"], seed=0, workers=1)
    assert _digest(tmp_path / "a", "fer2013") == _digest(tiny_corpus, "fer2013")


def test_other_seed_other_corpus(synth_cfg, tmp_path):
    corpus.write_fer2013(tmp_path / "a", synth_cfg["fer2013"], seed=0, workers=1)
    corpus.write_fer2013(tmp_path / "b", synth_cfg["fer2013"], seed=1, workers=1)
    assert _digest(tmp_path / "a", "fer2013") != _digest(tmp_path / "b", "fer2013")


def test_rewrite_replaces_stale_files(synth_cfg, tmp_path):
    corpus.write_affectnet(tmp_path, synth_cfg["affectnet"], seed=0, workers=1)
    stale = tmp_path / "affectnet" / "Manually_Annotated_Images" / "stale.jpg"
    stale.write_bytes(b"x")
    corpus.write_affectnet(tmp_path, synth_cfg["affectnet"], seed=0, workers=1)
    assert not stale.exists()
