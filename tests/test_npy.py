"""Atomic crop arrays: readers see the whole array or nothing; a crash leaves no temporary file."""

from __future__ import annotations

import numpy as np
import pytest

from sslfer.npy import atomic_crops


def test_atomic_crops_appears_only_when_complete(tmp_path):
    path = tmp_path / "sub" / "crops.npy"
    with atomic_crops(path, 3, 4) as crops:
        crops[1] = 7
        assert not path.exists()                      # not visible while being written
    out = np.load(path)
    assert out.shape == (3, 4, 4, 3) and out.dtype == np.uint8
    assert out[1].min() == 7 and out[0].max() == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["crops.npy"]


def test_atomic_crops_leaves_nothing_after_a_crash(tmp_path):
    path = tmp_path / "crops.npy"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_crops(path, 2, 4) as crops:
            crops[0] = 1
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
