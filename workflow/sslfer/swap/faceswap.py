"""Swap one pair of aligned face crops: the donor's head with the expression frame's eyes, brows, nose, mouth.

Both crops come from :func:`sslfer.preprocess.align.align_face`, so they already share one frame of
reference; the swap refines it with a least-squares similarity (no reflection) fitted on the inner-face
landmarks (brows, eyes, nose, outer lip), warps the expression crop onto the donor, and blends it in
under the union of two convex hulls ([eyes + brows], [nose + mouth]) of both the donor's points and the
warped expression points. Unlike the reference implementation: images are RGB throughout, the mask is
feathered, the blend is done in float and clipped to 0–255 (no uint8 wrap-around), and landmarks that
cannot define a swap give a ``degenerate_landmarks`` result instead of an exception or a silent fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..preprocess.align import similarity

BROWS = np.arange(17, 27)
NOSE = np.arange(27, 36)
EYES = np.arange(36, 48)
OUTER_MOUTH = np.arange(48, 60)
MOUTH = np.arange(48, 68)
JAW = np.arange(0, 17)
#: Landmarks the donor ← expression transform is fitted on.
ALIGN_POINTS = np.concatenate([BROWS, EYES, NOSE, OUTER_MOUTH])
#: Point groups whose convex hulls form the overlay mask.
OVERLAY_GROUPS = (np.concatenate([EYES, BROWS]), np.concatenate([NOSE, MOUTH]))

#: Plausibility limits of the donor ← expression transform (both crops are aligned, so it is near identity).
MAX_SCALE_RATIO = 1.5
MAX_ROTATION_DEG = 30.0
#: Minimum RMS spread of the alignment points, as a fraction of the crop size.
MIN_SPREAD = 0.05

OK = "ok"
DEGENERATE = "degenerate_landmarks"


@dataclass
class SwapResult:
    """Result of :func:`swap_face`. ``image`` and ``landmarks`` are None unless ``status`` is ``ok``.

    ``transform`` maps expression-crop pixels to donor-crop pixels (None when it could not be fitted);
    ``mask_area`` is the mean of the feathered mask (fraction of the crop, NaN without an image);
    ``landmarks`` are the result's 68 points in crop pixels: the donor's jaw (0–16) and the transformed
    expression points (17–67).
    """

    image: np.ndarray | None
    transform: np.ndarray | None
    mask_area: float
    landmarks: np.ndarray | None
    status: str
    error: str | None = None


def _check_points(lm: np.ndarray, size: int, role: str) -> str | None:
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        return f"{role} landmarks are missing or non-finite"
    pts = lm[ALIGN_POINTS]
    spread = float(np.sqrt(((pts - pts.mean(0)) ** 2).sum(1).mean()))
    if spread < MIN_SPREAD * size:
        return f"{role} landmarks collapsed (spread {spread:.1f} px < {MIN_SPREAD * size:.1f})"
    return None


def fit_transform(donor_lm: np.ndarray, expr_lm: np.ndarray, size: int) -> tuple[np.ndarray | None, str | None]:
    """(2×3 float64 similarity expression → donor, None) or (transform or None, reason it is degenerate)."""
    donor_lm, expr_lm = np.asarray(donor_lm, np.float64), np.asarray(expr_lm, np.float64)
    for lm, role in ((donor_lm, "donor"), (expr_lm, "expression")):
        err = _check_points(lm, size, role)
        if err:
            return None, err
    m = similarity(expr_lm[ALIGN_POINTS], donor_lm[ALIGN_POINTS])
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    angle = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    if not np.isfinite(m).all() or not 1 / MAX_SCALE_RATIO <= scale <= MAX_SCALE_RATIO:
        return m, f"implausible transform scale {scale:.2f} (allowed {1 / MAX_SCALE_RATIO:.2f}–{MAX_SCALE_RATIO})"
    if abs(angle) > MAX_ROTATION_DEG:
        return m, f"implausible transform rotation {angle:.1f}° (allowed ±{MAX_ROTATION_DEG:g}°)"
    return m, None


def overlay_mask(donor_lm: np.ndarray, warped_lm: np.ndarray, size: int, feather_px: float) -> np.ndarray:
    """Float32 ``size²`` mask in [0, 1]: the hulls of both point sets, grown by ``feather_px`` and blurred.

    The blur has σ = ``feather_px``/2, so the mask is ≈1 on the hulls and falls to exactly 0 within
    about 2·``feather_px`` outside them; ``feather_px`` = 0 gives the binary mask.
    """
    hard = np.zeros((size, size), np.uint8)
    for lm in (donor_lm, warped_lm):
        for group in OVERLAY_GROUPS:
            hull = cv2.convexHull(np.round(lm[group]).astype(np.int32))
            cv2.fillConvexPoly(hard, hull, 1)
    if feather_px <= 0:
        return hard.astype(np.float32)
    r = int(round(feather_px))
    if r > 0:
        hard = cv2.dilate(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    sigma = feather_px / 2
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return cv2.GaussianBlur(hard.astype(np.float32), (k, k), sigma, borderType=cv2.BORDER_CONSTANT)


def colour_kernel(donor_lm: np.ndarray) -> int:
    """Odd Gaussian kernel size for the colour correction: 0.6 × the donor's inter-ocular distance."""
    iod = np.linalg.norm(donor_lm[42:48].mean(0) - donor_lm[36:42].mean(0))
    k = int(0.6 * iod)
    return max(3, k + 1 - k % 2)


def colour_ratio(donor: np.ndarray, warped: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Per-pixel ratio of the donor's and the warped crop's Gaussian-blurred colours (kernel ``k``).

    The blurred means are taken over the mask only (normalised convolution), so hair and background
    around the inner face do not tint it; the denominator is kept at ≥ 1.
    """
    w = mask[..., None]
    weight = np.maximum(cv2.GaussianBlur(mask, (k, k), 0), 1e-6)[..., None]
    mean_donor = cv2.GaussianBlur(donor * w, (k, k), 0) / weight
    mean_warped = cv2.GaussianBlur(warped * w, (k, k), 0) / weight
    return mean_donor / np.maximum(mean_warped, 1.0)


def render_swap(donor_rgb: np.ndarray, donor_lm: np.ndarray, expr_rgb: np.ndarray, expr_lm: np.ndarray,
                m: np.ndarray, feather_px: float, colour_correct: bool) -> tuple[np.ndarray, float, np.ndarray]:
    """(uint8 image, mask area fraction, 68×2 landmarks) of a swap whose transform ``m`` (expression → donor,
    from :func:`fit_transform`) is known to be sound."""
    size = donor_rgb.shape[0]
    donor_lm, expr_lm = np.asarray(donor_lm, np.float64), np.asarray(expr_lm, np.float64)
    warped = cv2.warpAffine(expr_rgb, m, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    warped_lm = expr_lm @ m[:, :2].T + m[:, 2]
    mask = overlay_mask(donor_lm, warped_lm, size, feather_px)
    donor = donor_rgb.astype(np.float32)
    if colour_correct:
        warped = warped * colour_ratio(donor, warped, mask, colour_kernel(donor_lm))
    m3 = mask[..., None]
    image = np.clip(np.rint(donor * (1.0 - m3) + warped * m3), 0, 255).astype(np.uint8)
    landmarks = np.concatenate([donor_lm[JAW], warped_lm[17:]]).astype(np.float32)
    return image, float(mask.mean()), landmarks


def swap_face(donor_rgb: np.ndarray, donor_lm: np.ndarray, expr_rgb: np.ndarray, expr_lm: np.ndarray,
              feather_px: float = 3.0, colour_correct: bool = True) -> SwapResult:
    """The donor crop with the expression crop's inner face blended in (both uint8 RGB ``S×S×3``, landmarks
    68×2 in their crop pixels). Degenerate landmarks give status ``degenerate_landmarks`` and no image."""
    m, err = fit_transform(donor_lm, expr_lm, donor_rgb.shape[0])
    if err:
        return SwapResult(None, None if m is None else m.astype(np.float32), float("nan"), None, DEGENERATE, err)
    image, area, landmarks = render_swap(donor_rgb, donor_lm, expr_rgb, expr_lm, m, feather_px, colour_correct)
    return SwapResult(image, m.astype(np.float32), area, landmarks, OK)
