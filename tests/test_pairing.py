"""The [A, NA, P, NP] pairing, tested with distinguishable tracks: every crop of the coded corpus says which
track and frame it is, so each row of a training batch can be traced back to its frame and the layout checked
against what the loss assumes (the positive of row i is row (i + rows/2) mod rows)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sslfer.train.losses import positive_index
from sslfer.train.settings import TrainConfig, Variant
from sslfer.train.trainer import Trainer

OFF = dict(flip_p=0.0, jitter_p=(0.0, 0.0), blur_p=0.0, grey_p=0.0, landmark_mask_p=0.0)
EPS = 1e-6


def config(coded, **switches) -> TrainConfig:
    """A small config that leaves the coded pixels as they are (no augmentation, crops at their own size)."""
    return TrainConfig(variant=Variant(face_swap=False, mask_fn="off", **switches), batch_tracks=6, steps=4,
                       width=8, resize=coded.size, crop=coded.size, warmup_steps=0, seed=3, **OFF)


@pytest.fixture(scope="module")
def data(coded_corpus):
    from sslfer.train.data import TrainingData

    return TrainingData(coded_corpus.pairs, coded_corpus.frames)


def traced(coded, data, cfg: TrainConfig, tmp_path, step: int):
    """(track, time in s, n_views, n tracks) of each row of step ``step``'s batch, decoded from the pixels the
    model is given (the augmented batch), after checking they are the gathered crops' pixels."""
    torch.set_num_threads(1)
    trainer = Trainer(data, cfg, tmp_path / f"run-{step}")
    batch, n_views = trainer.make_batch(step)
    track, frame = coded.decode(batch.images)
    x = trainer.augment_batch(batch, step, n_views)                    # what the model sees, in batch order
    mean = torch.tensor((0.485, 0.456, 0.406)).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225)).view(1, 3, 1, 1)
    seen = coded.decode((x * std + mean).clamp(0, 1))
    assert np.array_equal(seen[0], track) and np.array_equal(seen[1], frame)
    assert np.array_equal(batch.group, track)                          # the loss's "same track" is the true track
    n = len(track) // n_views
    assert n == min(cfg.batch_tracks, len(data.index.eligible_tracks(cfg.variant.time_aug, cfg.variant.hard_neg)))
    return track.reshape(n_views, n), (frame * coded.step).reshape(n_views, n), n_views, n


def within(dt: np.ndarray, window) -> bool:
    return bool(((np.abs(dt) >= window[0] - EPS) & (np.abs(dt) <= window[1] + EPS)).all())


@pytest.mark.parametrize("step", [0, 1, 2])
def test_hard_neg_time_aug_rows_are_a_na_p_np(coded_corpus, data, tmp_path, step):
    coded = coded_corpus
    cfg = config(coded, time_aug=True, hard_neg=True)
    track, t, n_views, n = traced(coded, data, cfg, tmp_path, step)
    pos, far = coded.cfg["positive_s"], coded.cfg["hard_negative_min_s"]
    assert n_views == 4 and n == 6
    a, na, p, np_ = range(4)
    # block 0: anchors of n distinct tracks, each able to serve HardNeg (a track of 2 s cannot)
    assert len(set(track[a])) == n
    assert all(coded.tracks[k][1] >= far + pos[0] for k in track[a])
    # blocks 1-3: the same tracks in the same order
    assert (track == track[a]).all()
    assert (np.abs(t[na] - t[a]) >= far - EPS).all()                   # NA: a hard negative of A
    assert within(t[p] - t[a], pos)                                    # P: a TimeAug positive of A
    assert within(t[np_] - t[na], pos)                                 # NP: a TimeAug positive of NA
    # and the loss pairs A with P and NA with NP: row i with row (i + rows/2) mod rows
    partner = positive_index(4 * n).numpy()
    flat_t, flat_track = t.ravel(), track.ravel()
    assert (flat_track[partner] == flat_track).all() and within(flat_t[partner] - flat_t, pos)


def test_a_wrong_block_order_is_caught(coded_corpus, data, tmp_path):
    """The checks above are not vacuous: the same batch in [A, P, NA, NP] order fails them."""
    coded = coded_corpus
    track, t, _, _ = traced(coded, data, config(coded, time_aug=True, hard_neg=True), tmp_path, 0)
    wrong = t[[0, 2, 1, 3]]
    far = coded.cfg["hard_negative_min_s"]
    assert not (np.abs(wrong[1] - wrong[0]) >= far - EPS).all()
    assert not within(wrong[2] - wrong[0], coded.cfg["positive_s"])


@pytest.mark.parametrize("step", [0, 3])
def test_time_aug_rows_are_a_p(coded_corpus, data, tmp_path, step):
    coded = coded_corpus
    track, t, n_views, n = traced(coded, data, config(coded, time_aug=True, hard_neg=False), tmp_path, step)
    assert n_views == 2 and n == 6 and len(set(track[0])) == n and (track[1] == track[0]).all()
    assert within(t[1] - t[0], coded.cfg["positive_s"])
    # the 2 s track can serve TimeAug, the empty one cannot
    eligible = data.index.eligible_tracks(True, False)
    assert 5 in eligible and 12 not in eligible


@pytest.mark.parametrize("step", [0, 1])
def test_simclr_positive_is_the_anchor_frame(coded_corpus, data, tmp_path, step):
    coded = coded_corpus
    track, t, n_views, n = traced(coded, data, config(coded, time_aug=False, hard_neg=False), tmp_path, step)
    assert n_views == 2 and len(set(track[0])) == n
    assert (track[1] == track[0]).all() and (t[1] == t[0]).all()       # P = A: two augmentations of one frame


def test_hard_neg_without_time_aug_is_a_na_a_na(coded_corpus, data, tmp_path):
    coded = coded_corpus
    track, t, n_views, n = traced(coded, data, config(coded, time_aug=False, hard_neg=True), tmp_path, 0)
    assert n_views == 4 and len(set(track[0])) == n and (track == track[0]).all()
    assert (np.abs(t[1] - t[0]) >= coded.cfg["hard_negative_min_s"] - EPS).all()
    assert (t[2] == t[0]).all() and (t[3] == t[1]).all()


def test_every_eligible_track_is_used_once_per_epoch(coded_corpus, data, tmp_path):
    """Within an epoch a track is in at most one batch (the epoch is a permutation of the draw)."""
    coded = coded_corpus
    cfg = replace(config(coded, time_aug=True, hard_neg=False), batch_tracks=3)
    trainer = Trainer(data, cfg, tmp_path / "epoch")
    eligible = data.index.eligible_tracks(True, False)
    per_epoch = trainer.schedule.steps_per_epoch
    assert per_epoch == len(eligible) // 3
    seen = np.concatenate([coded.decode(trainer.make_batch(s)[0].images)[0][:3] for s in range(per_epoch)])
    assert len(set(seen)) == len(seen) and set(seen) <= set(eligible)
