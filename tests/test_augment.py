"""Batched augmentations on the tiny corpus' real aligned crops: determinism, exact geometry, the landmark
mask's region, and agreement of jitter/blur with torchvision's per-image formulas."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
import yaml

from sslfer.parquet import landmarks_numpy
from sslfer.train.augment import AugmentConfig, augment, sample_params, view_configs
from sslfer.train.image_ops import COMPONENTS, IMAGENET_MEAN, IMAGENET_STD

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


# ------------------------------------------------------------------ config → views; random resized crop
SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
#: For each key of the schema's pretrain.augment: (other valid value, the views it must change, other settings
#: both runs share). Views: 1 = A/NA, 2 = P/NP. A key of the schema missing here fails the test below.
ALTERNATIVES = {
    "resize": [(80, (1, 2), {})],
    "crop": [(48, (1, 2), {})],
    "scale": [([0.3, 0.6], (1, 2), {})],
    "ratio": [([0.5, 2.0], (1, 2), {"scale": [0.2, 1.0]})],         # the box's aspect: only with scale
    "flip_p": [(1.0, (1, 2), {})],
    "jitter": [([0.8, 0.0, 0.0, 0.0], (1, 2), {})],
    "jitter_p": [([0.0, 0.8], (1,), {}), ([1.0, 0.0], (2,), {})],    # one probability per view
    "blur_p": [(1.0, (1, 2), {})],
    "blur_sigma": [([2.5, 3.0], (1, 2), {"blur_p": 1.0})],          # the sigma matters only when blurring
    "grey_p": [(1.0, (1, 2), {})],
    "landmark_mask_p": [(1.0, (1, 2), {})],
}


def schema_augment_keys() -> dict:
    schema = yaml.safe_load(SCHEMA.read_text())
    return schema["properties"]["pretrain"]["properties"]["augment"]["properties"]


@pytest.fixture(scope="module")
def settings() -> dict:
    """A run's training settings with every default filled in (as ``pretrain_settings`` in common.smk builds them)."""
    from sslfer.config import prepare_config

    pre = prepare_config({}, SCHEMA, base=SCHEMA.parents[1])["pretrain"]
    out = {k: v for k, v in pre.items() if k not in ("variant", "variants", "threads", "checkpoint_every",
                                                     "monitor_every")}
    out["switches"] = pre["variants"]["simclr"]
    return out


def views_output(settings: dict, images, lm) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views of the batch through ``TrainConfig.from_config`` → ``_views`` → ``augment``, one fixed seed each."""
    from sslfer.train.settings import TrainConfig, views as _views

    v1, v2 = _views(TrainConfig.from_config(settings, seed=0, checkpoint_every=50, monitor_every=0))
    return (augment(images, lm, v1, torch.Generator().manual_seed(21)),
            augment(images, lm, v2, torch.Generator().manual_seed(21)))


def differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape != b.shape or not torch.allclose(a, b, atol=1e-4)


def test_each_augmentation_setting_reaches_the_views(batch, settings):
    keys = schema_augment_keys()
    assert set(ALTERNATIVES) == set(keys), "a pretrain.augment key has no alternative value in this test: add one"
    images, lm = batch[0][:16], batch[1][:16]
    for key, cases in ALTERNATIVES.items():
        assert keys[key]["default"] == settings["augment"][key]
        for value, views, shared in cases:
            assert value != keys[key]["default"], key
            base = copy.deepcopy(settings)
            base["augment"].update(shared)
            changed = copy.deepcopy(base)
            changed["augment"][key] = value
            before, after = views_output(base, images, lm), views_output(changed, images, lm)
            for view in (1, 2):
                assert differs(before[view - 1], after[view - 1]) == (view in views), \
                    f"pretrain.augment.{key} = {value}: view {view} {'unchanged' if view in views else 'changed'}"


def ramps(n: int, size: int = 128) -> torch.Tensor:
    """uint8 (n, size, size, 3): red = 2·x, green = 2·y (exactly linear, so bilinear sampling gives 2·position)."""
    x = torch.arange(size, dtype=torch.uint8) * 2
    img = torch.empty((size, size, 3), dtype=torch.uint8)
    img[..., 0], img[..., 1], img[..., 2] = x.view(1, -1), x.view(-1, 1), 100
    return img.expand(n, size, size, 3).contiguous()


def test_random_resized_crop_of_the_whole_image_is_bilinear_resampling(batch):
    images, lm = batch
    out, pix, params = run(images, lm, seed=5, resize=32, crop=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), **OFF)
    assert torch.equal(params.box, torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64).expand(len(images), 4))
    ref = F.interpolate(as_float(images), size=(32, 32), mode="bilinear", align_corners=False, antialias=False)
    assert (pix - ref).abs().max() < TOL


def test_random_resized_crop_takes_a_box_of_the_drawn_size(batch):
    n, size, crop = 64, 128, 32
    images = ramps(n, size)
    _, pix, params = run(images, None, seed=9, resize=crop, crop=crop, scale=(0.25, 0.25), ratio=(1.0, 1.0), **OFF)
    box = params.box
    assert torch.allclose(box[:, 2:], torch.full((n, 2), 0.5, dtype=torch.float64))     # half the side
    k = torch.arange(crop, dtype=torch.float64) + 0.5
    for i in range(n):
        x0, y0, w, h = box[i].tolist()
        # every output pixel samples the box: position (start + extent · (k + ½) / crop) · size − ½
        want_x = 2 * ((x0 + w * k / crop) * size - 0.5) / 255
        want_y = 2 * ((y0 + h * k / crop) * size - 0.5) / 255
        assert (pix[i, 0] - want_x.float().view(1, -1)).abs().max() < 1e-4
        assert (pix[i, 1] - want_y.float().view(-1, 1)).abs().max() < 1e-4
        span = float(pix[i, 0].max() - pix[i, 0].min()) / (2 * (size - 1) / 255)
        assert 0.45 < span < 0.52                                      # about half of the ramp's range
    assert box[:, 0].min() < 0.05 and box[:, 0].max() > 0.45            # placed anywhere the box fits
    flipped = run(images, None, seed=9, resize=crop, crop=crop, scale=(0.25, 0.25), ratio=(1.0, 1.0),
                  **{**OFF, "flip_p": 1.0})[1]
    assert (flipped - pix.flip(-1)).abs().max() < TOL                   # the same box, mirrored


def test_random_resized_crop_boxes_lie_in_the_image():
    cfg = AugmentConfig(scale=(0.08, 1.0))
    box = sample_params(20000, cfg, torch.Generator().manual_seed(0)).box
    x, y, w, h = box.unbind(1)
    assert (w > 0).all() and (h > 0).all() and (x >= 0).all() and (y >= 0).all()
    assert (x + w <= 1 + 1e-12).all() and (y + h <= 1 + 1e-12).all()
    area = w * h
    assert area.min() >= 0.08 - 1e-9 and area.max() <= 1 + 1e-12 and area.min() < 0.1 and area.max() > 0.9
    free = (w < 1) & (h < 1)                                            # not shrunk to the image side
    aspect = (w / h)[free]
    assert aspect.min() >= 0.75 - 1e-9 and aspect.max() <= 4 / 3 + 1e-9
    assert x.min() < 0.01 and (x + w).max() > 0.99 and y.min() < 0.01 and (y + h).max() > 0.99
