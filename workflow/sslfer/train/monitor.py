"""Representation quality while pretraining runs (``monitor.jsonl``): is the encoder learning expression?

At step 0 and every ``pretrain.monitor_every`` steps (and at the last step) the backbone, in eval mode and
without gradients, embeds two fixed image sets, and two k-nearest-neighbour probes score the features:

- **expression**: the evaluation set's *training* items (the AffectNet-style list; its test split is never
  read here), at most ``per_class`` per class chosen with a seeded generator, split per class into a
  reference half and a query half; each query item takes the weighted vote of its ``k`` nearest reference
  items. Recorded: macro-F1 and accuracy of the queries.
- **identity**: up to ``frames_per_track`` evenly spaced frames of each pretraining track; for every identity
  with two or more tracks, one track (seeded) is the query and its other tracks are the reference, so a
  query frame is recognised only through another clip of the same person. Recorded: accuracy.

Both probes use cosine similarity after centring the features on the reference mean, and the vote weight
``exp(cos / 0.07)``. A kNN probe needs no fitting, so it is cheap and has no hyper-parameter search; it is a
monitor, not the evaluation (the final numbers come from the linear probes of :mod:`sslfer.evaluate`). The
monitor reads no random stream of the trainer and leaves the model in training mode: a monitored run trains
exactly as an unmonitored one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq
import torch
from sklearn.metrics import f1_score

from ..npy import take_sorted
from .image_ops import centre_view

log = logging.getLogger(__name__)

KNN_TEMPERATURE = 0.07


@dataclass
class ProbeSet:
    """A fixed image set of one probe: uint8 ``(n, S, S, 3)`` images, integer labels, and which rows are the
    reference (the others are the queries)."""

    images: np.ndarray
    labels: np.ndarray
    reference: np.ndarray      # bool (n,)
    n_classes: int


def expression_set(items: str, crops_npy: str, n_classes: int, per_class: int, seed: int) -> ProbeSet:
    """The monitor's expression set from an evaluation set's items table (``train`` split, usable crops)."""
    tab = pq.read_table(items, columns=["split", "label", "crop_index"]).to_pandas()
    ok = (tab.split == "train") & (tab.crop_index >= 0) & (tab.label >= 0) & (tab.label < n_classes)
    rng = np.random.default_rng([seed, 7])
    rows, reference = [], []
    for c in range(n_classes):
        mine = np.flatnonzero((ok & (tab.label == c)).to_numpy())
        if len(mine) < 2:
            continue
        mine = np.sort(rng.permutation(mine)[:per_class])
        ref = np.zeros(len(mine), bool)
        ref[rng.permutation(len(mine))[: len(mine) // 2]] = True
        rows.append(mine)
        reference.append(ref)
    if len(rows) < 2:
        raise ValueError(f"{items}: fewer than two expression classes have two usable training items")
    rows_a = np.concatenate(rows)
    images = take_sorted(np.load(crops_npy, mmap_mode="r"), tab.crop_index.to_numpy()[rows_a])
    return ProbeSet(images, tab.label.to_numpy()[rows_a].astype(np.int64), np.concatenate(reference), n_classes)


def identity_set(data, frames_per_track: int, seed: int, max_identities: int = 64,
                 max_tracks: int = 4) -> ProbeSet | None:
    """The monitor's identity set from a :class:`~sslfer.train.data.TrainingData`: at most ``max_identities``
    of the identities with two or more tracks (a seeded choice), at most ``max_tracks`` tracks each, one of them
    the query. None when no identity has two tracks (identity cannot be measured on held-out tracks)."""
    index = data.index
    rng = np.random.default_rng([seed, 8])
    nonempty = np.flatnonzero(np.diff(index.track_start) > 0)
    people, counts = np.unique(index.identity[nonempty], return_counts=True)
    people = people[counts >= 2]
    if len(people) > max_identities:
        people = np.sort(rng.choice(people, max_identities, replace=False))
    frames, labels, reference = [], [], []
    for label, person in enumerate(people):
        tracks = nonempty[index.identity[nonempty] == person]
        if len(tracks) > max_tracks:
            tracks = np.sort(rng.choice(tracks, max_tracks, replace=False))
        query = tracks[rng.integers(len(tracks))]
        for t in tracks:
            s, e = index.track_start[t], index.track_start[t + 1]
            pick = np.unique(np.linspace(s, e - 1, min(frames_per_track, e - s)).round().astype(np.int64))
            frames.append(pick)
            labels.append(np.full(len(pick), label))
            reference.append(np.full(len(pick), t != query))
    if len(frames) < 2:
        return None
    images = data.frame_images(np.concatenate(frames))
    return ProbeSet(images, np.concatenate(labels).astype(np.int64), np.concatenate(reference), len(people))


def knn_predict(features: np.ndarray, labels: np.ndarray, reference: np.ndarray, n_classes: int,
                k: int = 10) -> np.ndarray:
    """Labels of the query rows (``~reference``) by the weighted vote of their ``k`` nearest reference rows."""
    x = features.astype(np.float64)
    x = x - x[reference].mean(0)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = x[~reference] @ x[reference].T
    k = min(k, int(reference.sum()))
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    weights = np.exp(np.take_along_axis(sims, top, 1) / KNN_TEMPERATURE)
    votes = np.zeros((len(sims), n_classes))
    np.add.at(votes, (np.repeat(np.arange(len(sims)), k), labels[reference][top].ravel()), weights.ravel())
    return votes.argmax(1)


@torch.no_grad()
def embed(backbone: torch.nn.Module, images: np.ndarray, resize: int, crop: int, device: torch.device,
          batch_size: int = 256) -> np.ndarray:
    """Backbone features of uint8 ``images`` seen as the evaluation sees them (:func:`centre_view`)."""
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
        out.append(backbone(centre_view(x, resize, crop)).float().cpu().numpy())
    return np.concatenate(out)


class Monitor:
    """The two probes of one training run; :meth:`measure` gives one ``monitor.jsonl`` record. Images are seen
    as the evaluation sees them: resized to ``resize``, centre-cropped to ``crop``."""

    def __init__(self, expression: ProbeSet | None, identity: ProbeSet | None, resize: int, crop: int,
                 k: int = 10) -> None:
        self.expression, self.identity, self.resize, self.crop, self.k = expression, identity, resize, crop, k

    def _predict(self, model: torch.nn.Module, s: ProbeSet, device: torch.device) -> np.ndarray:
        feats = embed(model.backbone, s.images, self.resize, self.crop, device)
        return knn_predict(feats, s.labels, s.reference, s.n_classes, self.k)

    def measure(self, model: torch.nn.Module, step: int, device: torch.device) -> dict:
        """Probe the backbone of ``model`` (``model.backbone``) now; the model is back in training mode after."""
        t0 = time.perf_counter()
        was_training = model.training
        model.eval()
        record: dict = {"step": step, "view": [self.resize, self.crop]}
        try:
            if self.expression is not None:
                e = self.expression
                truth, pred = e.labels[~e.reference], self._predict(model, e, device)
                present = np.union1d(truth, pred)
                record["expression_f1"] = round(float(f1_score(truth, pred, labels=present, average="macro")), 4)
                record["expression_acc"] = round(float((pred == truth).mean()), 4)
            if self.identity is not None:
                i = self.identity
                hits = self._predict(model, i, device) == i.labels[~i.reference]
                record["identity_acc"] = round(float(hits.mean()), 4)
        finally:
            model.train(was_training)
        record["seconds"] = round(time.perf_counter() - t0, 3)
        return record
