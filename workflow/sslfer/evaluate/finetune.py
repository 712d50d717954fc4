"""The paper-compatible fine-tune protocol (the paper's released evaluation code), as an option beside the linear probe.

Backbone unfrozen, the reference's MLP head (ReLU–Dropout 0.5–Linear ×2, Dropout 0.5, Linear), balanced
softmax cross-entropy (logits + log class counts), Adam (lr 1e-4, weight decay 5e-4), batch 64, per-step
cosine, 20 epochs; training augmentations as the reference's (landmark mask p 0.8, flip, colour jitter,
blur, greyscale; no crop). We report the **last epoch** on the test split; the reference's number was the
best epoch *on the test split* (it had no other), which we add as ``best_epoch_on_test`` for comparability
only — it is optimistic by construction.

``device`` (config key ``device``, :mod:`sslfer.device`) is where the network, the augmentations and the
loss run; the random draws come from CPU generators either way (on the CPU the numbers are those of a
run without the argument).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pyarrow.parquet as pq
import torch
from torch import nn

from ..device import describe, resolve_device
from ..files import sha256_file
from ..parquet import landmarks_numpy
from ..train.augment import AugmentConfig, augment
from ..train.image_ops import resize_centre_crop
from ..train.image_ops import centre_view as preprocess
from ..train.model import load_encoder
from .metrics import classification_report

log = logging.getLogger(__name__)


def mlp_head(dim: int, n_classes: int) -> nn.Sequential:
    """The reference's head: [ReLU, Dropout .5, Linear] for dim→1024→512, then Dropout .5, Linear → classes."""
    return nn.Sequential(nn.ReLU(), nn.Dropout(0.5), nn.Linear(dim, 1024), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(1024, 512), nn.Dropout(0.5), nn.Linear(512, n_classes))


def balanced_softmax_loss(logits: torch.Tensor, y: torch.Tensor, class_counts: torch.Tensor) -> torch.Tensor:
    """Balanced softmax: cross-entropy of ``logits + log n_c`` (``n_c``: the training count of class ``c``, at
    least 1), which offsets the class imbalance of the training set."""
    return nn.functional.cross_entropy(logits + class_counts.clamp(min=1).log(), y)


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device`` (from pinned memory, asynchronously, on a GPU)."""
    return x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x


@torch.no_grad()
def _predict(net: nn.Module, crops: np.ndarray, rows: np.ndarray, resize: int, crop: int,
             device: torch.device = torch.device("cpu")) -> np.ndarray:
    net.eval()
    out = []
    for s in range(0, len(rows), 256):
        idx = rows[s:s + 256]
        x = _to(torch.from_numpy(np.ascontiguousarray(crops[idx])), device)
        out.append(net(preprocess(x, resize, crop)).argmax(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def finetune(encoder: str, items: str, crops_npy: str, n_classes: int, class_names: list[str], resize: int,
             crop: int, cfg: dict, seed: int, run: str, dataset: str, device: str | torch.device = "cpu") -> dict:
    """Fine-tune ``encoder`` with the MLP head on the training items; evaluate each epoch on the test items."""
    device = resolve_device(device)
    log.info("fine-tune %s on %s: %s", run, dataset, describe(device))
    torch.manual_seed(seed)
    backbone, record = load_encoder(encoder)
    net = nn.Sequential(backbone, mlp_head(record["feature_dim"], n_classes)).to(device)
    tab = pq.read_table(items)
    df = tab.to_pandas()
    usable = (df.crop_index >= 0).to_numpy() & df.label.between(0, n_classes - 1).to_numpy()
    train = np.flatnonzero(usable & (df.split == "train").to_numpy())
    test = np.flatnonzero(usable & (df.split == "test").to_numpy())
    crops = np.load(crops_npy, mmap_mode="r")
    crop_index = df.crop_index.to_numpy()
    y = df.label.to_numpy()
    lms = landmarks_numpy(tab.column("landmarks_crop")) if "landmarks_crop" in tab.column_names else None
    counts = torch.tensor(np.bincount(y[train], minlength=n_classes), dtype=torch.float32).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    bs, epochs = cfg["batch_size"], cfg["epochs"]
    steps = epochs * math.ceil(len(train) / bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    view = AugmentConfig(resize=crops.shape[1], crop=crops.shape[1], jitter_p=1.0)
    rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(train)
        for s in range(0, len(order), bs):
            idx = np.sort(order[s:s + bs])
            images = _to(torch.from_numpy(np.ascontiguousarray(crops[crop_index[idx]])), device)
            lm = _to(torch.from_numpy(lms[idx]), device) if lms is not None else None
            x = resize_centre_crop(augment(images, lm, view, g), resize, crop)
            loss = balanced_softmax_loss(net(x), _to(torch.from_numpy(y[idx]), device), counts)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        pred = _predict(net, crops, crop_index[test], resize, crop, device)
        rep = classification_report(y[test], pred, n_classes)
        history.append({"epoch": epoch + 1, "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"]})
        log.info("fine-tune epoch %d: test accuracy %.3f, macro-F1 %.3f", epoch + 1, rep["accuracy"], rep["macro_f1"])
    best = max(history, key=lambda h: h["macro_f1"]) if history else None
    return {"dataset": dataset, "run": run, "protocol": "finetune (MLP head, unfrozen, balanced softmax)",
            "seed": seed, "encoder": encoder, "encoder_sha256": sha256_file(encoder), "classes": class_names,
            "sizes": {"train": int(len(train)), "test": int(len(test))}, "settings": cfg,
            "expression": rep if history else None, "history": history,
            "best_epoch_on_test": best}
