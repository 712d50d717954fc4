"""Batched, seeded tensor augmentations for contrastive pretraining (reference-method.md §6, §9.7).

The reference applies, per image with PIL: landmark-region mask (p 0.8) → Resize 128 → RandomCrop 112 →
horizontal flip (p 0.5) → ColorJitter(0.4, 0.4, 0.4, 0.2) (always in view 1, p 0.8 in view 2) →
Gaussian blur (kernel 3, σ ∈ [0.1, 2], p 0.5) → greyscale (p 0.2) → ImageNet normalisation.
:func:`augment` applies the same list to a whole batch of tensors on the batch's device:

1. :func:`landmark_mask` — an ellipse filling the bounding box (± ``landmark_margin`` · image size) of ONE
   component per sample (left eye 36–41, right eye 42–47 or mouth 48–67; the reference drew the component
   once per run), filled with the image's mean colour. Samples whose landmarks are not finite are untouched.
2. :func:`geometric` — resize to ``resize``², random integer-offset crop ``crop``², horizontal flip, fused
   into one affine resampling (bilinear, ``align_corners=False``, pixel centres as in ``F.interpolate``;
   like ``F.interpolate`` with ``antialias=False``, a downscale is not low-pass filtered first).
3. :func:`color_jitter` — brightness, contrast, saturation, hue in this fixed order (torchvision permutes
   the order per call), factors uniform in [max(0, 1 − x), 1 + x] and hue shift uniform in [−h, h]; each
   step is torchvision's tensor formula (blend + clamp; the hue shift is an exact HSV rotation).
4. :func:`gaussian_blur` — 3×3 Gaussian with a per-sample σ, reflect padding, one grouped convolution.
5. :func:`greyscale` — ITU-R 601 luma replicated to 3 channels.
6. :func:`normalize` — clamp to [0, 1], ImageNet mean/std.

Every random number comes from the CPU ``torch.Generator`` passed in (:func:`sample_params` draws one
fixed-size block per batch and moves it to the batch's device), so the same generator state gives the same
output and the stream position does not depend on the probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = (0.2989, 0.587, 0.114)
#: Landmark index ranges (start, stop) of the maskable components, iBUG order.
COMPONENTS = {"left_eye": (36, 42), "right_eye": (42, 48), "mouth": (48, 68)}
#: The reference's mask margin: 10 px on its 128 px frames.
REFERENCE_MARGIN = 10 / 128
_N_DRAWS = 13  # uniforms per sample, see sample_params


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

    def __post_init__(self) -> None:
        if not 0 < self.crop <= self.resize:
            raise ValueError(f"augment: need 0 < crop ({self.crop}) <= resize ({self.resize})")
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
    flip: torch.Tensor  # bool
    jitter: torch.Tensor  # bool
    factors: torch.Tensor  # float (B, 4): brightness, contrast, saturation factors, hue shift
    blur: torch.Tensor  # bool
    sigma: torch.Tensor  # float
    grey: torch.Tensor  # bool

    def to(self, device: torch.device | str) -> AugmentParams:
        """The same parameters on ``device``."""
        return AugmentParams(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def sample_params(n: int, cfg: AugmentConfig, generator: torch.Generator) -> AugmentParams:
    """Draw the parameters of ``n`` samples on the CPU: one ``(n, 13)`` block of uniforms, one column per
    decision, so the generator advances by the same amount whatever the probabilities are."""
    u = torch.rand((n, _N_DRAWS), generator=generator, dtype=torch.float64)
    span = cfg.resize - cfg.crop
    lo = torch.tensor([max(0.0, 1 - x) for x in cfg.jitter[:3]] + [-cfg.jitter[3]], dtype=torch.float64)
    hi = torch.tensor([1 + x for x in cfg.jitter[:3]] + [cfg.jitter[3]], dtype=torch.float64)
    s_lo, s_hi = cfg.blur_sigma
    return AugmentParams(
        mask=u[:, 0] < cfg.landmark_mask_p,
        component=(u[:, 1] * len(COMPONENTS)).long().clamp(max=len(COMPONENTS) - 1),
        offset=(u[:, 2:4] * (span + 1)).long().clamp(max=span),
        flip=u[:, 4] < cfg.flip_p,
        jitter=u[:, 5] < cfg.jitter_p,
        factors=(lo + (hi - lo) * u[:, 6:10]).float(),
        blur=u[:, 10] < cfg.blur_p,
        sigma=(s_lo + (s_hi - s_lo) * u[:, 11]).float(),
        grey=u[:, 12] < cfg.grey_p,
    )


def _select(apply: torch.Tensor, changed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    return torch.where(apply.view(-1, 1, 1, 1), changed, original)


def luma(img: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` luma of ``(B, 3, H, W)`` RGB in [0, 1]."""
    r, g, b = img.unbind(1)
    return (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b).unsqueeze(1)


def component_ellipses(landmarks: torch.Tensor, component: torch.Tensor, size: tuple[int, int],
                       margin: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(centres (B, 2), semi-axes (B, 2), finite (B,)) of the chosen component's bounding box ± ``margin`` ·
    (W, H), in pixel coordinates (pixel centres at integers, as the crop landmarks)."""
    lo = torch.stack([landmarks[:, a:b].amin(1) for a, b in COMPONENTS.values()], 1)  # (B, 3, 2)
    hi = torch.stack([landmarks[:, a:b].amax(1) for a, b in COMPONENTS.values()], 1)
    rows = torch.arange(len(landmarks), device=landmarks.device)
    lo, hi = lo[rows, component], hi[rows, component]
    finite = torch.isfinite(lo).all(1) & torch.isfinite(hi).all(1)
    lo, hi = lo.nan_to_num(0.0, 0.0, 0.0), hi.nan_to_num(0.0, 0.0, 0.0)
    pad = torch.tensor([margin * size[1], margin * size[0]], device=landmarks.device, dtype=landmarks.dtype)
    return (lo + hi) / 2, ((hi - lo) / 2 + pad).clamp(min=0.5), finite


def landmark_mask(img: torch.Tensor, landmarks: torch.Tensor, apply: torch.Tensor, component: torch.Tensor,
                  margin: float) -> torch.Tensor:
    """Fill the ellipse over component ``component[i]`` of sample ``i`` (where ``apply[i]`` and its landmarks
    are finite) with the image's mean colour. ``img`` float ``(B, 3, H, W)``, ``landmarks`` ``(B, 68, 2)``."""
    _, _, h, w = img.shape
    centre, axes, finite = component_ellipses(landmarks, component, (h, w), margin)
    xs = torch.arange(w, device=img.device, dtype=img.dtype).view(1, 1, w)
    ys = torch.arange(h, device=img.device, dtype=img.dtype).view(1, h, 1)
    dx = (xs - centre[:, 0].view(-1, 1, 1)) / axes[:, 0].view(-1, 1, 1)
    dy = (ys - centre[:, 1].view(-1, 1, 1)) / axes[:, 1].view(-1, 1, 1)
    inside = (dx * dx + dy * dy <= 1.0) & (apply & finite).view(-1, 1, 1)
    return torch.where(inside.unsqueeze(1), img.mean((2, 3), keepdim=True), img)


def crop_flip_theta(offset: torch.Tensor, flip: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """``(B, 2, 3)`` ``affine_grid`` matrices (normalised output → input coordinates) of resize to
    ``resize``², crop ``crop``² at ``offset`` (x, y) and an optional horizontal flip, for any input size."""
    scale = crop / resize
    theta = torch.zeros((len(offset), 2, 3), dtype=torch.float32, device=offset.device)
    theta[:, 0, 0] = scale * (1.0 - 2.0 * flip.float())
    theta[:, 1, 1] = scale
    theta[:, :, 2] = (crop + 2.0 * offset.float()) / resize - 1.0
    return theta


def geometric(img: torch.Tensor, offset: torch.Tensor, flip: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """Resize + crop + flip of ``(B, 3, H, W)`` as one bilinear resampling → ``(B, 3, crop, crop)``."""
    theta = crop_flip_theta(offset, flip, resize, crop).to(img.dtype)
    grid = F.affine_grid(theta, [len(img), img.shape[1], crop, crop], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    """HSV (all in [0, 1]) of ``(B, 3, H, W)`` RGB in [0, 1]."""
    r, g, b = img.unbind(1)
    maxc, minc = img.amax(1), img.amin(1)
    delta = maxc - minc
    flat = delta == 0
    s = delta / torch.where(maxc == 0, 1.0, maxc)
    d = delta.masked_fill_(flat, 1.0)
    h = torch.where(maxc == r, (g - b).div_(d),
                    torch.where(maxc == g, (b - r).div_(d).add_(2.0), (r - g).div_(d).add_(4.0)))
    h = h.div_(6.0).remainder_(1.0).masked_fill_(flat, 0.0)
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """RGB of ``(B, 3, H, W)`` HSV (any real hue, taken mod 1): channel n of (r, g, b) is
    v − v·s·clamp(min(k, 4 − k), 0, 1) with k = (n' + 6h) mod 6, n' = 5, 3, 1."""
    h, s, v = hsv.split(1, 1)
    k = (6.0 * h + torch.tensor([5.0, 3.0, 1.0], device=hsv.device, dtype=hsv.dtype).view(1, 3, 1, 1))
    k = k.remainder_(6.0)
    k = torch.minimum(k, 4.0 - k).clamp_(0, 1)
    return k.mul_(-(v * s)).add_(v)


def color_jitter(img: torch.Tensor, apply: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation, hue (fixed order) with per-sample ``factors`` ``(B, 4)``."""
    b, c, s, hue = (v.view(-1, 1, 1, 1) for v in factors.to(img.dtype).unbind(1))
    x = (img * b).clamp_(0, 1)
    grey_mean = luma(x).mean((1, 2, 3), keepdim=True)
    x = x.mul_(c).add_((1 - c) * grey_mean).clamp_(0, 1)
    grey = luma(x)
    x = x.mul_(s).add_((1 - s) * grey).clamp_(0, 1)
    hsv = rgb_to_hsv(x)
    hsv[:, :1] += hue
    return _select(apply, hsv_to_rgb(hsv), img)


def gaussian_blur(img: torch.Tensor, apply: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """3×3 Gaussian blur with per-sample ``sigma`` (reflect padding), one grouped convolution."""
    n, ch, h, w = img.shape
    taps = torch.tensor([-1.0, 0.0, 1.0], device=img.device, dtype=img.dtype)
    k1 = torch.exp(-0.5 * (taps.view(1, 3) / sigma.to(img.dtype).view(-1, 1)) ** 2)
    k1 = k1 / k1.sum(1, keepdim=True)
    k2 = (k1.view(n, 3, 1) * k1.view(n, 1, 3)).repeat_interleave(ch, 0).unsqueeze(1)  # (B·C, 1, 3, 3)
    padded = F.pad(img, (1, 1, 1, 1), mode="reflect").reshape(1, n * ch, h + 2, w + 2)
    blurred = F.conv2d(padded, k2, groups=n * ch).view(n, ch, h, w)
    return _select(apply, blurred, img)


def greyscale(img: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """Luma replicated to 3 channels where ``apply``."""
    return _select(apply, luma(img).expand_as(img), img)


def normalize(img: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and normalise with the ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)
    return (img.clamp(0, 1) - mean) / std


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
    n = len(images)
    if landmarks is not None and tuple(landmarks.shape) != (n, 68, 2):
        raise ValueError(f"augment: need landmarks ({n}, 68, 2), got {tuple(landmarks.shape)}")
    p = sample_params(n, cfg, generator).to(images.device)
    x = images.permute(0, 3, 1, 2).float().div_(255.0)
    if landmarks is not None:
        lm = landmarks.to(device=x.device, dtype=torch.float32)
        x = landmark_mask(x, lm, p.mask, p.component, cfg.landmark_margin)
    x = geometric(x, p.offset, p.flip, cfg.resize, cfg.crop)
    x = color_jitter(x, p.jitter, p.factors)
    x = gaussian_blur(x, p.blur, p.sigma)
    x = greyscale(x, p.grey)
    return normalize(x)
