"""The pixel operations of the augmentations (:mod:`.augment`) and of the evaluation view, on batches of images
``(B, 3, H, W)`` with per-sample parameters, all on the batch's device: the landmark-component ellipses, the
geometric resampling (resize, crop, flip in one pass), colour jitter, Gaussian blur, greyscale, normalisation,
and the deterministic resize + centre crop that evaluation and the monitor see."""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUMA = (0.2989, 0.587, 0.114)
#: Landmark index ranges (start, stop) of the maskable components, iBUG order.
COMPONENTS = {"left_eye": (36, 42), "right_eye": (42, 48), "mouth": (48, 68)}


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


def image_mean(images: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` float32 mean colour in [0, 1] of uint8 ``(B, H, W, 3)`` images."""
    n, h, w, _ = images.shape
    sums = images.sum(1, dtype=torch.float32).view(n, w, 3).sum(1)  # exact: integers below 2^24
    return sums.double().div_(h * w * 255.0).float()


def fill_ellipses_(img: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, centre: torch.Tensor,
                   axes: torch.Tensor, active: torch.Tensor, fill: torch.Tensor) -> None:
    """In place: set the pixels of ``img`` (B, 3, h, w) whose source coordinates (rows ``ys`` (B, h), columns
    ``xs`` (B, w)) lie in sample i's ellipse (``centre``, semi-``axes``, (B, 2)) to ``fill[i]`` (B, 3), for
    the samples where ``active``."""
    dx = (xs.to(img.dtype) - centre[:, :1]) / axes[:, :1]
    dy = (ys.to(img.dtype) - centre[:, 1:]) / axes[:, 1:]
    limit = torch.where(active, 1.0, -1.0).to(img.dtype).view(-1, 1, 1)  # -1: nothing is inside
    inside = (dy.mul_(dy).unsqueeze(2) + dx.mul_(dx).unsqueeze(1)).le_(limit)  # 0/1 as floats
    img.lerp_(fill.view(-1, 3, 1, 1), inside.unsqueeze(1))  # weight 0 or 1: exactly img or fill


def _taps(pos: torch.Tensor, flip: torch.Tensor | None, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source positions ``pos`` (B, crop), float64, on an axis of length ``size`` → (first pixel, second pixel,
    weight of the second): border clamping, mirrored where ``flip``."""
    pos = pos.clamp_(0, size - 1)
    if flip is not None:
        pos = torch.where(flip.view(-1, 1), pos.flip(1), pos)
    first = pos.floor()
    weight = (pos - first).float()
    first = first.long()
    return first, (first + 1).clamp_(max=size - 1), weight


def source_pixels(offset: torch.Tensor, flip: torch.Tensor | None, size: int, resize: int,
                  crop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Along one axis of length ``size``: for each output pixel of resize to ``resize`` → crop ``crop`` at
    ``offset`` (B,) (→ mirrored where ``flip``), the two source pixels (long (B, crop)) and the weight of the
    second (float32): bilinear, ``align_corners=False``, border clamping, as ``F.interpolate``."""
    pos = offset.view(-1, 1).double() + torch.arange(crop, device=offset.device, dtype=torch.float64) + 0.5
    return _taps(pos * (size / resize) - 0.5, flip, size)


def box_pixels(start: torch.Tensor, extent: torch.Tensor, flip: torch.Tensor | None, size: int,
               crop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """As :func:`source_pixels` for a random resized crop: the box from ``start`` to ``start + extent`` (B,)
    (fractions of the axis of length ``size``) resampled to ``crop`` pixels."""
    steps = torch.arange(crop, device=start.device, dtype=torch.float64) + 0.5
    return _taps((start.view(-1, 1) + extent.view(-1, 1) * steps / crop) * size - 0.5, flip, size)


def _window(images: torch.Tensor, offset: torch.Tensor, flipped: torch.Tensor | None, crop: int) -> torch.Tensor:
    """uint8 ``(B, crop, crop, 3)`` crop windows at ``offset`` (x, y), mirrored for the samples ``flipped``
    (device indices; None: all)."""
    n, h, w, _ = images.shape
    segments = images.reshape(-1).unfold(0, crop * 3, 3)  # (pixels, crop · 3): a row run from each pixel
    rows = torch.arange(n, device=images.device).view(-1, 1) * h + offset[:, 1:] + torch.arange(
        crop, device=images.device)
    win = segments.index_select(0, (rows * w + offset[:, :1]).view(-1)).view(n, crop, crop, 3)
    if flipped is None:
        return win.flip(2)
    if len(flipped):
        win.index_copy_(0, flipped, win.index_select(0, flipped).flip(2))
    return win


def geometric(images: torch.Tensor, offset: torch.Tensor, flip: torch.Tensor, flipped: torch.Tensor | None,
              resize: int, crop: int, out: torch.Tensor, mask: tuple[torch.Tensor, ...] | None = None,
              box: torch.Tensor | None = None) -> None:
    """Resize + crop + flip of uint8 ``(B, H, W, 3)`` images into float ``out`` ``(B, 3, crop, crop)`` in
    [0, 1]. ``flip`` (B,) bool and ``flipped`` (its true indices, None: all) on the device. Bilinear and
    separable (rows, then columns); at ``resize`` = H = W a plain copy of the crop window. ``mask``
    (centre, axes, active, fill of :func:`fill_ellipses_`) is drawn on the source pixels before any
    interpolation. ``box`` (B, 4): a random resized crop's boxes instead of ``resize`` and ``offset``."""
    n, h, w, _ = images.shape
    if box is not None:
        y0, y1, wy = box_pixels(box[:, 1], box[:, 3], None, h, crop)
        x0, x1, wx = box_pixels(box[:, 0], box[:, 2], flip, w, crop)
        resize = -1                          # always resample both axes
    else:
        y0, y1, wy = source_pixels(offset[:, 1], None, h, resize, crop)
        x0, x1, wx = source_pixels(offset[:, 0], flip, w, resize, crop)
    if h == w == resize:
        out.copy_(_window(images, offset, flipped, crop).permute(0, 3, 1, 2)).div_(255.0)
        if mask is not None:
            fill_ellipses_(out, y0, x0, *mask)
        return
    flat = images.reshape(n * h, w * 3)
    first_row = torch.arange(n, device=images.device).view(-1, 1) * h
    xs = torch.arange(w, device=images.device).expand(n, w)

    def rows(index: torch.Tensor) -> torch.Tensor:  # (B, 3, crop, W) float in [0, 1], masked
        picked = flat.index_select(0, (first_row + index).view(-1)).view(n, crop, w, 3).permute(0, 3, 1, 2)
        x = torch.empty(picked.shape, dtype=out.dtype, device=out.device).copy_(picked).div_(255.0)
        if mask is not None:
            fill_ellipses_(x, index, xs, *mask)
        return x

    x = rows(y0)
    if h != resize:
        x.lerp_(rows(y1), wy.view(n, 1, crop, 1))
    torch.gather(x, 3, x0.view(n, 1, 1, crop).expand(n, 3, crop, crop), out=out)
    if w != resize:
        out.lerp_(torch.gather(x, 3, x1.view(n, 1, 1, crop).expand(n, 3, crop, crop)), wx.view(n, 1, 1, crop))


def luma(img: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` luma of ``(B, 3, H, W)`` RGB in [0, 1]."""
    r, g, b = img.unbind(1)
    return (r * LUMA[0]).add_(g * LUMA[1]).add_(b * LUMA[2]).unsqueeze(1)


def rotate_hue_(img: torch.Tensor, shift: torch.Tensor) -> None:
    """In place: add ``shift`` (B,) to the HSV hue (in turns) of ``(B, 3, H, W)`` RGB in [0, 1], keeping
    saturation and value. With k = 6·hue, channel n becomes min + (max − min) · clamp(dist(k + n', 2 + 6ℤ) − 1,
    0, 1), n' = 5, 3, 1 for r, g, b: the hexcone's HSV → RGB profile."""
    r, g, b = img.unbind(1)
    maxc = torch.maximum(r, g)
    maxc = torch.maximum(maxc, b, out=maxc)
    minc = torch.minimum(r, g)
    minc = torch.minimum(minc, b, out=minc)
    delta = maxc - minc
    # k in [-1, 5] from the channel holding the maximum (r before g before b, as torchvision):
    # (g − b) / δ, 2 + (b − r) / δ, 4 + (r − g) / δ
    k = torch.sub(r, g).add_(delta, alpha=4.0)
    other = torch.sub(b, r).add_(delta, alpha=2.0)
    pick = torch.eq(g, maxc, out=torch.empty_like(k))  # 0/1 as floats: lerp selects exactly
    k.lerp_(other, pick)
    k.lerp_(torch.sub(g, b, out=other), torch.eq(r, maxc, out=pick))
    k.div_(torch.clamp(delta, min=1e-30, out=pick))  # grey pixels: 0 / tiny = 0
    # each channel's phase, reduced so that k + phase lies in [-6, 6): there dist(k + n', 2 + 6ℤ) =
    # dist(k + phase, ±3) = ||k + phase| − 3|
    phase = torch.tensor([5.0, 3.0, 1.0], device=img.device, dtype=torch.float64)
    phase = phase.add(6.0 * shift.double().view(-1, 1)).remainder_(6.0).sub_(5.0).to(img.dtype).view(-1, 3, 1, 1)
    torch.add(k.unsqueeze(1), phase, out=img)
    img.abs_().sub_(3.0).abs_().clamp_(1.0, 2.0)  # 1 + the profile
    img.mul_(delta.unsqueeze(1)).add_(minc.sub_(delta).unsqueeze(1))


def color_jitter_(img: torch.Tensor, factors: torch.Tensor) -> None:
    """In place: brightness, contrast, saturation, hue (fixed order) with per-sample ``factors`` ``(B, 4)``."""
    b, c, s, hue = (v.view(-1, 1, 1, 1) for v in factors.to(img.dtype).unbind(1))
    img.mul_(b).clamp_(0, 1)
    grey_mean = (img.mean((2, 3)) * torch.tensor(LUMA, device=img.device, dtype=img.dtype)).sum(1)  # mean luma
    img.mul_(c).add_((1 - c) * grey_mean.view(-1, 1, 1, 1)).clamp_(0, 1)
    grey = luma(img)
    img.mul_(s).addcmul_(grey, 1 - s).clamp_(0, 1)
    rotate_hue_(img, hue.view(-1))


def _blur_pass(src: torch.Tensor, dst: torch.Tensor, dim: int, centre: torch.Tensor, side: torch.Tensor) -> None:
    """``dst`` = the 3-tap filter (side, centre, side) of ``src`` along ``dim``, reflect padding."""
    n = src.shape[dim]
    torch.mul(src, centre, out=dst)
    dst.narrow(dim, 1, n - 1).addcmul_(src.narrow(dim, 0, n - 1), side)
    dst.narrow(dim, 0, n - 1).addcmul_(src.narrow(dim, 1, n - 1), side)
    dst.narrow(dim, 0, 1).addcmul_(src.narrow(dim, 1, 1), side)  # reflect: pixel -1 is pixel 1
    dst.narrow(dim, n - 1, 1).addcmul_(src.narrow(dim, n - 2, 1), side)


def gaussian_blur_(img: torch.Tensor, sigma: torch.Tensor) -> None:
    """In place: 3×3 Gaussian blur with per-sample ``sigma`` (reflect padding), as two 3-tap passes."""
    taps = torch.exp(-0.5 / sigma.to(img.dtype).square())  # a neighbour's weight relative to the centre's
    side = (taps / (1 + 2 * taps)).view(-1, 1, 1, 1)
    centre = (1 / (1 + 2 * taps)).view(-1, 1, 1, 1)
    rows = torch.empty_like(img)
    _blur_pass(img, rows, 2, centre, side)
    _blur_pass(rows, img, 3, centre, side)


def greyscale_(img: torch.Tensor) -> None:
    """In place: luma replicated to 3 channels."""
    img.copy_(luma(img).expand_as(img))


def normalize_(img: torch.Tensor) -> None:
    """In place: clamp to [0, 1] and normalise with the ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=img.device, dtype=img.dtype).view(1, 3, 1, 1)
    img.clamp_(0, 1).sub_(mean).div_(std)


def resize_centre_crop(x: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """Float ``(B, 3, H, W)`` resized to ``resize``² (bilinear, ``align_corners=False``) and centre-cropped
    to ``crop``²."""
    x = torch.nn.functional.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False)
    off = (resize - crop) // 2
    return x[:, :, off:off + crop, off:off + crop]


def centre_view(images: torch.Tensor, resize: int, crop: int) -> torch.Tensor:
    """The deterministic view of uint8 ``(B, H, W, 3)`` images that evaluation (and the training monitor)
    uses: :func:`resize_centre_crop`, ImageNet normalisation; float ``(B, 3, crop, crop)``."""
    x = resize_centre_crop(images.permute(0, 3, 1, 2).float().div_(255.0), resize, crop)
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
