"""Batched, seeded tensor augmentations for contrastive pretraining (the reference's list, below).

The reference applies, per image with PIL: landmark-region mask (p 0.8) → Resize 128 → RandomCrop 112 →
horizontal flip (p 0.5) → ColorJitter(0.4, 0.4, 0.4, 0.2) (always in view 1, p 0.8 in view 2) →
Gaussian blur (kernel 3, σ ∈ [0.1, 2], p 0.5) → greyscale (p 0.2) → ImageNet normalisation.
:func:`augment` applies the same list to a whole batch of tensors on the batch's device:

1. landmark mask — an ellipse filling the bounding box (± ``landmark_margin`` · image size) of ONE
   component per sample (left eye 36–41, right eye 42–47 or mouth 48–67; the reference drew the component
   once per run), filled with the image's mean colour (:func:`image_mean`). Samples whose landmarks are not
   finite are untouched. It is drawn by :func:`geometric` (:func:`fill_ellipses_`) on the source pixels
   that the resampling reads, before any interpolation: the same result as masking the whole image first.
2. :func:`geometric` — resize to ``resize``², random integer-offset crop ``crop``², horizontal flip, as
   one separable bilinear resampling of the uint8 images (``align_corners=False``, border clamping, as
   ``F.interpolate`` with ``antialias=False``: a downscale is not low-pass filtered first); when ``resize``
   is the image size, a plain copy of the crop window. With ``scale`` set it is a random *resized* crop
   instead (SimCLR's): a box of ``scale`` × the image area and aspect ratio log-uniform in ``ratio``,
   placed uniformly, resampled the same way to ``crop``²; a box that would not fit is shrunk to the image
   side (torchvision retries the draw instead; here every sample gets exactly one draw).
3. :func:`color_jitter_` — brightness, contrast, saturation, hue in this fixed order (torchvision permutes
   the order per call), factors uniform in [max(0, 1 − x), 1 + x] and hue shift uniform in [−h, h]; each
   step is torchvision's tensor formula (blend + clamp; the hue shift is an exact HSV rotation).
4. :func:`gaussian_blur_` — 3×3 Gaussian with a per-sample σ, reflect padding, as two 3-tap passes.
5. :func:`greyscale_` — ITU-R 601 luma replicated to 3 channels.
6. :func:`normalize_` — clamp to [0, 1], ImageNet mean/std.

Steps 3–6 work in place on the output; a step with a probability runs only on the samples it applies to
(the others are not touched). On the CPU the batch goes through the whole list in blocks of
:data:`CPU_BLOCK` samples, so that each step reads data still in cache; elsewhere in one block.

Every random number comes from the CPU ``torch.Generator`` passed in (:func:`sample_params` draws one
fixed-size block per batch), so the same generator state gives the same output and the stream position
does not depend on the probabilities. The parameters and the lists of samples each step applies to are
moved to the batch's device up front: the device never has to report back to decide anything. The steps
themselves are in :mod:`.image_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import torch

from .image_ops import (COMPONENTS, color_jitter_, component_ellipses, gaussian_blur_, geometric, greyscale_,
                        image_mean, normalize_)

#: The reference's mask margin: 10 px on its 128 px frames.
REFERENCE_MARGIN = 10 / 128
_N_DRAWS = 13  # uniforms per sample, see sample_params (2 more with a random resized crop)
#: Samples per block on the CPU: each step then works on data that stays in cache.
CPU_BLOCK = 32


@dataclass(frozen=True)
class AugmentConfig:
    """One view's pipeline. ``landmark_margin`` is a fraction of the input image size."""

    resize: int = 72
    crop: int = 64
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.2)
    jitter_p: float = 1.0
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    grey_p: float = 0.2
    landmark_mask_p: float = 0.8
    landmark_margin: float = REFERENCE_MARGIN
    scale: tuple[float, float] | None = None     # random resized crop: area fraction range (None: shift only)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __post_init__(self) -> None:
        if self.crop <= 0 or (self.scale is None and self.crop > self.resize):     # resize is unused with scale
            raise ValueError(f"augment: need 0 < crop ({self.crop}) <= resize ({self.resize})")
        if self.scale is not None:
            object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
            if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1] <= 1:
                raise ValueError(f"augment.scale = {self.scale}: need 0 < low <= high <= 1")
        object.__setattr__(self, "ratio", tuple(float(v) for v in self.ratio))
        if len(self.ratio) != 2 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise ValueError(f"augment.ratio = {self.ratio}: need 0 < low <= high")
        for f in fields(self):
            if f.name.endswith("_p") and not 0.0 <= getattr(self, f.name) <= 1.0:
                raise ValueError(f"augment.{f.name} = {getattr(self, f.name)} is not a probability")
        object.__setattr__(self, "jitter", tuple(float(v) for v in self.jitter))
        object.__setattr__(self, "blur_sigma", tuple(float(v) for v in self.blur_sigma))
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError(f"augment.jitter = {self.jitter}: need 4 values >= 0, hue <= 0.5")
        if len(self.blur_sigma) != 2 or not 0 < self.blur_sigma[0] <= self.blur_sigma[1]:
            raise ValueError(f"augment.blur_sigma = {self.blur_sigma}: need 0 < low <= high")


def view_configs(jitter_p: tuple[float, float] = (1.0, 0.8), **settings) -> tuple[AugmentConfig, AugmentConfig]:
    """The reference's two pipelines: view 1 (A, NA) always jittered, view 2 (P, NP) with p 0.8; the other
    ``settings`` (``AugmentConfig`` fields) are shared."""
    return AugmentConfig(jitter_p=jitter_p[0], **settings), AugmentConfig(jitter_p=jitter_p[1], **settings)


@dataclass(frozen=True)
class AugmentParams:
    """Per-sample parameters of one batch (first dimension B)."""

    mask: torch.Tensor  # bool: apply the landmark mask
    component: torch.Tensor  # long: index into COMPONENTS
    offset: torch.Tensor  # long (B, 2): crop offset (x, y) in the resized image
    box: torch.Tensor  # float64 (B, 4): random resized crop (x, y, width, height) as fractions of the image
    flip: torch.Tensor  # bool
    jitter: torch.Tensor  # bool
    factors: torch.Tensor  # float (B, 4): brightness, contrast, saturation factors, hue shift
    blur: torch.Tensor  # bool
    sigma: torch.Tensor  # float
    grey: torch.Tensor  # bool

    def to(self, device: torch.device | str) -> AugmentParams:
        """The same parameters on ``device``."""
        return AugmentParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def rows(self, rows: slice) -> AugmentParams:
        """The parameters of samples ``rows``."""
        return AugmentParams(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


def sample_params(n: int, cfg: AugmentConfig, generator: torch.Generator) -> AugmentParams:
    """Draw the parameters of ``n`` samples on the CPU: one ``(n, 13)`` block of uniforms (``(n, 15)`` with a
    random resized crop), one column per decision, so the generator advances by the same amount whatever the
    probabilities are."""
    u = torch.rand((n, _N_DRAWS + (2 if cfg.scale else 0)), generator=generator, dtype=torch.float64)
    span = cfg.resize - cfg.crop
    box = torch.zeros((n, 4), dtype=torch.float64)
    if cfg.scale:
        area = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * u[:, 13]
        log_lo, log_hi = torch.log(torch.tensor(cfg.ratio, dtype=torch.float64))
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, 14])
        box[:, 2] = (area * aspect).sqrt().clamp(max=1.0)
        box[:, 3] = (area / aspect).sqrt().clamp(max=1.0)
        box[:, :2] = u[:, 2:4] * (1 - box[:, 2:])
    lo = torch.tensor([max(0.0, 1 - x) for x in cfg.jitter[:3]] + [-cfg.jitter[3]], dtype=torch.float64)
    hi = torch.tensor([1 + x for x in cfg.jitter[:3]] + [cfg.jitter[3]], dtype=torch.float64)
    s_lo, s_hi = cfg.blur_sigma
    return AugmentParams(
        mask=u[:, 0] < cfg.landmark_mask_p,
        component=(u[:, 1] * len(COMPONENTS)).long().clamp(max=len(COMPONENTS) - 1),
        offset=(u[:, 2:4] * (span + 1)).long().clamp(max=span),
        box=box,
        flip=u[:, 4] < cfg.flip_p,
        jitter=u[:, 5] < cfg.jitter_p,
        factors=(lo + (hi - lo) * u[:, 6:10]).float(),
        blur=u[:, 10] < cfg.blur_p,
        sigma=(s_lo + (s_hi - s_lo) * u[:, 11]).float(),
        grey=u[:, 12] < cfg.grey_p,
    )




class _Applied(NamedTuple):
    """Which samples of a block each random step applies to: device indices, or None for all."""

    flip: torch.Tensor | None
    jitter: torch.Tensor | None
    blur: torch.Tensor | None
    grey: torch.Tensor | None

    @staticmethod
    def of(p: AugmentParams, device: torch.device) -> _Applied:
        """From a block's CPU parameters (so the device never has to report back)."""
        return _Applied(*(None if bool(a.all()) else a.nonzero().view(-1).to(device)
                          for a in (p.flip, p.jitter, p.blur, p.grey)))


def _on_(samples: torch.Tensor | None, step, img: torch.Tensor, *args: torch.Tensor) -> None:
    """Run the in-place ``step(img, *args)`` on ``samples`` (indices; None: all), leaving the others as they are."""
    if samples is None:
        step(img, *args)
    elif len(samples):
        part = img.index_select(0, samples)
        step(part, *(a.index_select(0, samples) for a in args))
        img.index_copy_(0, samples, part)


def _augment_block(images: torch.Tensor, q: AugmentParams, applied: _Applied, ellipses: tuple | None,
                   cfg: AugmentConfig, out: torch.Tensor) -> None:
    """The whole list on one block into ``out``: ``q`` its parameters on the device, ``ellipses`` (centres,
    axes, active) of its landmark mask or None."""
    mask = None if ellipses is None else (*ellipses, image_mean(images))
    geometric(images, q.offset, q.flip, applied.flip, cfg.resize, cfg.crop, out, mask,
              q.box if cfg.scale else None)
    _on_(applied.jitter, color_jitter_, out, q.factors)
    _on_(applied.blur, gaussian_blur_, out, q.sigma)
    _on_(applied.grey, greyscale_, out)
    normalize_(out)


def augment(images: torch.Tensor, landmarks: torch.Tensor | None, cfg: AugmentConfig,
            generator: torch.Generator) -> torch.Tensor:
    """One augmented view of a batch.

    ``images``: uint8 ``(B, H, W, 3)`` RGB (the layout of ``crops.npy``), on any device.
    ``landmarks``: ``(B, 68, 2)`` in the images' pixel coordinates (e.g. ``landmarks_crop``); NaN rows (or
    ``None`` for all) mean no landmark mask for that sample. ``generator``: a CPU generator; the parameters
    are :func:`sample_params` ``(B, cfg, generator)``, drawn first and only there.
    Returns float32 ``(B, 3, cfg.crop, cfg.crop)`` ImageNet-normalised, on the images' device.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"augment: need uint8 (B, H, W, 3) images, got {images.dtype} {tuple(images.shape)}")
    n, device = len(images), images.device
    if landmarks is not None and tuple(landmarks.shape) != (n, 68, 2):
        raise ValueError(f"augment: need landmarks ({n}, 68, 2), got {tuple(landmarks.shape)}")
    p = sample_params(n, cfg, generator)
    q = p.to(device)
    step = CPU_BLOCK if device.type == "cpu" else max(n, 1)
    blocks = [(rows, _Applied.of(p.rows(rows), device)) for rows in
              (slice(start, start + step) for start in range(0, n, step))]
    ellipses = None
    if landmarks is not None and bool(p.mask.any()):
        centre, axes, finite = component_ellipses(landmarks.to(device, torch.float32), q.component,
                                                  images.shape[1:3], cfg.landmark_margin)
        ellipses = (centre, axes, q.mask & finite)
    out = torch.empty((n, 3, cfg.crop, cfg.crop), dtype=torch.float32, device=device)
    for rows, applied in blocks:
        _augment_block(images[rows], q.rows(rows), applied,
                       None if ellipses is None else tuple(e[rows] for e in ellipses), cfg, out[rows])
    return out
