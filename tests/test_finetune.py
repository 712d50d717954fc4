"""The paper-compatible fine-tune protocol: its loss by hand, and that it learns a visible label, reproducibly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sslfer.evaluate.finetune import balanced_softmax_loss, finetune, mlp_head
from sslfer.train.model import random_encoder

SETTINGS = {"epochs": 4, "lr": 1e-3, "weight_decay": 5e-4, "batch_size": 16}


def test_balanced_softmax_hand_values():
    counts = torch.tensor([3.0, 1.0])
    zero = torch.zeros(2, 2)
    # logits 0 → adjusted logits log 3, log 1: p(class 1) = 1/4, p(class 0) = 3/4
    assert balanced_softmax_loss(zero, torch.tensor([1, 1]), counts).item() == pytest.approx(math.log(4))
    assert balanced_softmax_loss(zero, torch.tensor([0, 1]), counts).item() == pytest.approx(
        (math.log(4 / 3) + math.log(4)) / 2)
    # an empty class counts as 1 (log 1 = 0), never log 0
    assert torch.isfinite(balanced_softmax_loss(zero, torch.tensor([1, 0]), torch.tensor([0.0, 5.0])))


def test_mlp_head_shape_and_dropouts():
    head = mlp_head(512, 8)
    assert head(torch.zeros(4, 512)).shape == (4, 8)
    assert sum(isinstance(m, torch.nn.Dropout) for m in head) == 3


def _band_dataset(root: Path, n_train: int = 32, n_test: int = 16, size: int = 32) -> tuple[Path, Path]:
    """Two classes a network can see: a bright band in the top or the bottom half (horizontal flips keep it);
    noise elsewhere. A few rows are unusable (no crop, out-of-range label) and must be ignored."""
    rng = np.random.default_rng(0)
    n = n_train + n_test
    labels = np.arange(n) % 2
    crops = rng.integers(0, 90, (n, size, size, 3), dtype=np.uint8)
    for i, y in enumerate(labels):
        rows = slice(2, 12) if y == 0 else slice(size - 12, size - 2)
        crops[i, rows] = rng.integers(200, 255, (10, size, 3), dtype=np.uint8)
    items = pd.DataFrame({"crop_index": np.arange(n), "label": labels,
                          "split": ["train"] * n_train + ["test"] * n_test})
    bad = pd.DataFrame({"crop_index": [-1, 0], "label": [0, 9], "split": ["train", "test"]})
    pd.concat([items, bad], ignore_index=True).to_parquet(root / "items.parquet")
    np.save(root / "crops.npy", crops)
    return root / "items.parquet", root / "crops.npy"


def test_finetune_learns_a_visible_label_and_is_reproducible(tmp_path):
    items, crops = _band_dataset(tmp_path)
    encoder = random_encoder(tmp_path / "encoder.pt", "resnet18", seed=0, config={})
    run = [finetune(str(encoder), str(items), str(crops), 2, ["top", "bottom"], 32, 32, SETTINGS, seed=3,
                    run="random", dataset="bands") for _ in range(2)]
    res = run[0]
    assert res["sizes"] == {"train": 32, "test": 16}            # the unusable rows are not counted
    assert [h["epoch"] for h in res["history"]] == list(range(1, 5))
    # a random backbone, unfrozen, learns where the band is: chance is 0.5
    assert res["expression"]["accuracy"] >= 0.9, res["history"]
    assert res["best_epoch_on_test"]["macro_f1"] >= res["expression"]["macro_f1"]
    assert res["encoder_sha256"] and res["settings"] == SETTINGS
    assert run[1]["history"] == res["history"]                  # same seed → same run
