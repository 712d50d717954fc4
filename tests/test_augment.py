"""Batched augmentations on the tiny corpus' real aligned crops: determinism, exact geometry, the landmark
mask's region, and agreement of jitter/blur with torchvision's per-image formulas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from sslfer.parquet import landmarks_numpy
from sslfer.train.augment import (COMPONENTS, IMAGENET_MEAN, IMAGENET_STD, AugmentConfig, augment, sample_params,
                                  view_configs)

OFF = dict(flip_p=0.0, jitter_p=0.0, blur_p=0.0, grey_p=0.0, landmark_mask_p=0.0)
TOL = 1e-5  # in [0, 1] pixel units


@pytest.fixture(scope="module")
def batch(processed):
    """(uint8 (B, 128, 128, 3) crops, (B, 68, 2) crop landmarks) of every ok frame."""
    tmp, _, df, crops = processed
    ok = (df.status == "ok").to_numpy()
    lm = landmarks_numpy(pq.read_table(tmp / "frames.parquet").column("landmarks_crop"))[ok]
    images = np.ascontiguousarray(crops[df.crop_index.to_numpy()[ok]])
    assert len(images) >= 60 and np.isfinite(lm).all()
    return torch.from_numpy(images), torch.from_numpy(lm)


def pixels(out: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation: back to [0, 1] pixel units."""
    return out * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)


def as_float(images: torch.Tensor) -> torch.Tensor:
    return images.permute(0, 3, 1, 2).float() / 255


def run(images, landmarks, seed: int = 0, **settings):
    """(output in pixel units, the parameters it used) of ``augment`` with ``settings``."""
    cfg = AugmentConfig(**settings)
    out = augment(images, landmarks, cfg, torch.Generator().manual_seed(seed))
    return out, pixels(out), sample_params(len(images), cfg, torch.Generator().manual_seed(seed))


def test_shape_dtype_and_determinism(batch):
    images, lm = batch
    out, pix, _ = run(images, lm, seed=3)
    assert out.shape == (len(images), 3, 64, 64) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.isfinite(out).all() and pix.min() >= -1e-6 and pix.max() <= 1 + 1e-6
    assert torch.equal(out, run(images, lm, seed=3)[0])
    assert not torch.allclose(out, run(images, lm, seed=4)[0], atol=0.1)
    # the parameter stream does not depend on the probabilities: same seed → same crops whatever p is
    a = sample_params(8, AugmentConfig(), torch.Generator().manual_seed(5))
    b = sample_params(8, AugmentConfig(**OFF), torch.Generator().manual_seed(5))
    assert torch.equal(a.offset, b.offset) and torch.equal(a.factors, b.factors)
    with pytest.raises(ValueError, match="uint8"):
        augment(as_float(images[:2]), None, AugmentConfig(), torch.Generator())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(batch):
    images, lm = batch
    cpu = run(images, lm, seed=1)[0]
    gpu = augment(images.cuda(), lm.cuda(), AugmentConfig(), torch.Generator().manual_seed(1))
    assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-3)


def test_identity_path_is_exact(batch):
    images, lm = batch
    _, pix, _ = run(images, lm, resize=128, crop=128, **OFF)
    assert (pix - as_float(images)).abs().max() < TOL


def test_flip_mirrors_exactly(batch):
    images, lm = batch
    _, pix, _ = run(images, lm, resize=128, crop=128, **{**OFF, "flip_p": 1.0})
    assert (pix - as_float(images).flip(-1)).abs().max() < TOL


def test_crop_is_an_integer_window_and_resize_is_bilinear(batch):
    images, lm = batch
    _, pix, params = run(images, lm, seed=2, resize=128, crop=100, **OFF)
    x = as_float(images)
    for i, (ox, oy) in enumerate(params.offset.tolist()):
        assert (pix[i] - x[i, :, oy:oy + 100, ox:ox + 100]).abs().max() < TOL
    assert len(set(map(tuple, params.offset.tolist()))) > len(images) // 2
    _, pix, _ = run(images, lm, resize=72, crop=72, **OFF)
    ref = F.interpolate(x, size=(72, 72), mode="bilinear", align_corners=False, antialias=False)
    assert (pix - ref).abs().max() < TOL


def test_landmark_mask_fills_one_component_ellipse(batch):
    images, lm = batch
    lm = lm.clone()
    lm[::5] = float("nan")  # every 5th sample has no landmarks
    margin = AugmentConfig().landmark_margin * 128
    _, pix, params = run(images, lm, seed=7, resize=128, crop=128, **{**OFF, "landmark_mask_p": 1.0})
    x = as_float(images)
    changed = ((pix - x).abs() > TOL).any(1).numpy()
    ys, xs = np.mgrid[0:128, 0:128]
    names = list(COMPONENTS)
    chosen = set()
    for i in range(len(images)):
        if i % 5 == 0:
            assert not changed[i].any()
            continue
        name = names[int(params.component[i])]
        chosen.add(name)
        a, b = COMPONENTS[name]
        lo, hi = lm[i, a:b].min(0).values.numpy(), lm[i, a:b].max(0).values.numpy()
        c, r = (lo + hi) / 2, (hi - lo) / 2 + margin
        ellipse = ((xs - c[0]) / r[0]) ** 2 + ((ys - c[1]) / r[1]) ** 2 <= 1
        assert changed[i].sum() > 0.9 * ellipse.sum() and not (changed[i] & ~ellipse).any()
        fill = pix[i][:, torch.from_numpy(changed[i])]
        assert torch.allclose(fill, x[i].mean((1, 2)).view(3, 1).expand_as(fill), atol=TOL)
        # the masked region covers this component's landmarks, not the other components' centres
        centres = {n: lm[i, s:e].mean(0).round().long().tolist() for n, (s, e) in COMPONENTS.items()}
        assert all(changed[i][cy, cx] == (n == name) for n, (cx, cy) in centres.items())
    assert chosen == set(names)


def test_greyscale_gives_three_equal_channels(batch):
    images, lm = batch
    _, pix, _ = run(images, lm, resize=128, crop=128, **{**OFF, "grey_p": 1.0})
    x = as_float(images)
    luma = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert (pix - luma.unsqueeze(1)).abs().max() < TOL


def test_jitter_matches_torchvision_per_image(batch):
    images, lm = batch[0][:32], batch[1][:32]
    _, pix, params = run(images, lm, seed=11, resize=128, crop=128, **{**OFF, "jitter_p": 0.5})
    x = as_float(images)
    assert 0 < int(params.jitter.sum()) < len(images)
    for i in range(len(images)):
        ref = x[i]
        if params.jitter[i]:
            b, c, s, h = params.factors[i].tolist()
            ref = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(ref, b), c), s), h)
        assert (pix[i] - ref).abs().max() < 1e-4


def test_brightness_scales_the_mean(batch):
    images, lm = batch
    _, pix, params = run(images, lm, seed=13, resize=128, crop=128,
                         **{**OFF, "jitter_p": 1.0, "jitter": (0.4, 0, 0, 0)})
    factor = params.factors[:, 0]
    ratio = pix.mean((1, 2, 3)) / as_float(images).mean((1, 2, 3))
    assert factor.min() < 0.7 and factor.max() > 1.3
    dim = factor <= 1  # no clipping: the mean scales by the factor
    assert torch.allclose(ratio[dim], factor[dim], rtol=1e-4)
    # brighter: clipped at 1, so the mean rises by less than the factor but in the same order
    assert (ratio[~dim] <= factor[~dim] + 1e-4).all() and (ratio[~dim] > 1).all()


def test_blur_matches_torchvision_per_image(batch):
    images, lm = batch[0][:32], batch[1][:32]
    _, pix, params = run(images, lm, seed=17, resize=128, crop=128, **{**OFF, "blur_p": 0.5})
    x = as_float(images)
    assert 0 < int(params.blur.sum()) < len(images)
    for i in range(len(images)):
        sigma = float(params.sigma[i])
        ref = TF.gaussian_blur(x[i], [3, 3], [sigma, sigma]) if params.blur[i] else x[i]
        assert (pix[i] - ref).abs().max() < TOL


def test_view_configs_and_validation():
    v1, v2 = view_configs(resize=128, crop=112)
    assert (v1.jitter_p, v2.jitter_p) == (1.0, 0.8) and v1.crop == v2.crop == 112
    assert dataclasses.replace(v1, jitter_p=0.8) == v2
    assert AugmentConfig(jitter=[0.4, 0.4, 0.4, 0.2]).jitter == (0.4, 0.4, 0.4, 0.2)
    with pytest.raises(ValueError, match="crop"):
        AugmentConfig(resize=64, crop=72)
    with pytest.raises(ValueError, match="grey_p"):
        AugmentConfig(grey_p=1.5)
