"""The face model itself: identities, expressions, trajectories."""

from __future__ import annotations

import numpy as np

from sslfer.synth.expression import ACTION_INDEX, CIRCUMPLEX, CLASSES, expression_vector, valence_arousal
from sslfer.synth.geometry import Pose, inter_ocular, landmarks_3d, project
from sslfer.synth.identity import sample_identity
from sslfer.synth.trajectory import DEFAULT_HOLD_S, LABEL_THRESHOLD, expression_track, speech


def _frontal(ident, actions):
    return project(landmarks_3d(ident, actions), Pose(), 100.0, (0.0, 0.0))


def test_hundreds_of_distinguishable_identities():
    ids = [sample_identity(n, seed=0) for n in range(400)]
    assert len({i.name for i in ids}) == 400
    shape = np.array([_frontal(i, np.zeros(len(ACTION_INDEX))).ravel() for i in ids])
    shape = shape[:, shape.std(0) > 1e-9]        # drop coordinates fixed by symmetry (e.g. the chin's x)
    colour = np.array([np.concatenate([i.skin, i.hair, i.lip_colour]) for i in ids])
    feats = np.concatenate([(shape - shape.mean(0)) / shape.std(0), 3 * (colour - colour.mean(0)) / colour.std(0)], 1)
    d = np.linalg.norm(feats[:, None] - feats[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    typical = np.median(d[np.isfinite(d)])
    # even the closest pair differs by a sizeable fraction of the typical distance
    assert d.min() > 0.2 * typical
    assert len({i.hair_style for i in ids}) >= 5 and 0.1 < np.mean([i.glasses for i in ids]) < 0.3


def test_identity_is_a_function_of_number_and_seed():
    assert sample_identity(7, 0) == sample_identity(7, 0)
    assert sample_identity(7, 0) != sample_identity(7, 1)


def test_contempt_is_asymmetric_and_the_others_symmetric():
    ident = sample_identity(3, 0)
    neutral = _frontal(ident, np.zeros(len(ACTION_INDEX)))
    for c, name in enumerate(CLASSES):
        lm = _frontal(ident, expression_vector(c, 1.0))
        # mouth corners 48 (image left) and 54 (image right), relative to neutral
        dy_l, dy_r = lm[48, 1] - neutral[48, 1], lm[54, 1] - neutral[54, 1]
        if name == "contempt":
            assert abs(dy_l - dy_r) > 5.0
        else:
            assert abs(dy_l - dy_r) < 1e-6, name


def test_expressions_move_the_landmarks_they_should():
    ident = sample_identity(5, 0)
    n = _frontal(ident, np.zeros(len(ACTION_INDEX)))

    def lm(name, k=1.0):
        return _frontal(ident, expression_vector(CLASSES.index(name), k))

    assert lm("happy")[48, 1] < n[48, 1] and lm("happy")[54, 0] > n[54, 0]           # corners up and out
    assert lm("sad")[48, 1] > n[48, 1] and lm("sad")[21, 1] < n[21, 1]              # corners down, inner brow up
    s = lm("surprise")
    assert s[66, 1] - s[62, 1] > 3 * (n[66, 1] - n[62, 1]) + 10 and s[19, 1] < n[19, 1]  # mouth open, brows up
    assert lm("anger")[21, 1] > n[21, 1] and lm("anger")[21, 0] > n[21, 0]          # inner brow down and in
    assert lm("disgust")[33, 1] < n[33, 1]                                           # nose wrinkled up
    # intensity scales the displacement
    half, full = lm("happy", 0.5), lm("happy", 1.0)
    assert 0.3 < np.linalg.norm(half - n) / np.linalg.norm(full - n) < 0.7


def test_valence_arousal_table_and_noise():
    rng = np.random.default_rng(0)
    va = np.array([valence_arousal(CLASSES.index("happy"), 1.0, rng) for _ in range(200)])
    assert np.allclose(va.mean(0), CIRCUMPLEX[CLASSES.index("happy")], atol=0.02)
    assert 0.02 < va.std(0).mean() < 0.08
    assert np.sign(CIRCUMPLEX[CLASSES.index("sad")][0]) < 0 < CIRCUMPLEX[CLASSES.index("happy")][0]


def test_expression_track_is_smooth_and_visits_several_classes():
    rng = np.random.default_rng(0)
    tr = expression_track(500, 25.0, rng)
    assert len(set(tr.class_idx[tr.class_idx > 0])) >= 3           # 20 s: several episodes
    assert np.abs(np.diff(tr.actions, axis=0)).max() < 0.25          # no jumps between frames
    shown = tr.class_idx > 0
    assert (tr.intensity[shown] >= LABEL_THRESHOLD).all() and (tr.intensity[~shown] == 0).all()
    jaw, lips = speech(250, 25.0, rng)
    assert 0 < jaw.max() <= 0.3 and (lips >= 0).all()
    # a syllable-rate oscillation: the mouth opens and closes many times in 10 s
    assert np.sum(np.diff(np.sign(np.diff(jaw))) < 0) >= 10


def _same_class_rates(hold_s: tuple[float, float], tracks: int = 200) -> tuple[float, float]:
    """P(same class) of frames 0.48-1.44 s apart (TimeAug's positives) and >= 2.88 s apart (HardNeg's negatives),
    over 4-6 s tracks sampled at 25/6 fps as the pairs index does."""
    rng = np.random.default_rng(1)
    near, far = [], []
    for _ in range(tracks):
        lab = expression_track(int(rng.uniform(4.0, 6.0) * 25), 25.0, rng, hold_s).class_idx[::6]
        gap = np.abs(np.arange(len(lab))[:, None] - np.arange(len(lab))[None, :])
        same = lab[:, None] == lab[None, :]
        near.append(same[(gap >= 2) & (gap <= 6)])
        far.append(same[gap >= 12])
    return float(np.concatenate(near).mean()), float(np.concatenate(far).mean())


def test_expression_track_honours_the_time_aug_premise():
    # TimeAug's positives (0.5-1.5 s apart) should mostly share the expression, HardNeg's (>= 3 s) mostly not
    near, far = _same_class_rates(DEFAULT_HOLD_S)
    assert near > 0.6 and far < 0.35, (near, far)
    # short episodes break the premise (the first corpus had these): a positive is then usually another class
    near_short, _ = _same_class_rates((0.5, 1.6))
    assert near_short < 0.45, near_short


def test_inter_ocular_distance_of_the_template():
    ident = sample_identity(0, 0)
    lm = _frontal(ident, np.zeros(len(ACTION_INDEX)))
    assert 100 < inter_ocular(lm) < 160          # outer corners ≈ 1.2–1.4 half face widths


def test_lfw_pair_plan_holds_for_default_and_extreme_sizes():
    from sslfer.synth.stills import lfw_pairs, plan_lfw

    # (people, pairs per fold, View-1 train pairs, View-1 test pairs): the default and the schema's corners
    for people, per_fold, dev_train, dev_test in [(100, 20, 100, 50), (20, 20, 100, 50), (20, 1, 1, 1), (300, 40, 500, 200)]:
        for seed in range(3):
            plan = plan_lfw(people, 8, per_fold, dev_train, dev_test, seed)
            names = [f"P{p}" for p in range(people)]
            files = lfw_pairs(plan, names, per_fold, dev_train, dev_test, seed)
            assert files["pairs.txt"][0] == f"10\t{per_fold}" and len(files["pairs.txt"]) == 1 + 20 * per_fold
            assert len(files["pairsDevTrain.txt"]) == 1 + 2 * dev_train
            assert len(files["pairsDevTest.txt"]) == 1 + 2 * dev_test
            for fname, lines in files.items():
                assert len(set(lines[1:])) == len(lines) - 1, fname          # distinct pairs
            for line in files["pairs.txt"][1:]:
                f = line.split("\t")
                people_in_pair = [f[0]] if len(f) == 3 else [f[0], f[2]]
                assert len({plan.folds[int(n[1:])] for n in people_in_pair}) == 1   # within one fold
