"""Drawing primitives on a float32 RGB canvas in [0, 1]: filled or stroked polygons, anti-aliased and sub-pixel
(OpenCV, ``shift=4``), drawn only inside each shape's bounding box; smooth curves through points."""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4
_ONE = 1 << _SHIFT


def _roi(shape: tuple[int, ...], pts: np.ndarray, pad: float) -> tuple[int, int, int, int] | None:
    h, w = shape[:2]
    x0 = max(int(np.floor(pts[:, 0].min() - pad)), 0)
    y0 = max(int(np.floor(pts[:, 1].min() - pad)), 0)
    x1 = min(int(np.ceil(pts[:, 0].max() + pad)) + 1, w)
    y1 = min(int(np.ceil(pts[:, 1].max() + pad)) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _fixed(p: np.ndarray, x0: int, y0: int) -> np.ndarray:
    return np.round((np.asarray(p, dtype=np.float64) - [x0, y0]) * _ONE).astype(np.int32)


def _mask(img: np.ndarray, polys: list[np.ndarray], blur: float = 0.0, lines: float = 0.0,
          closed: bool = True) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    """Anti-aliased coverage mask (float32, 0..1) of filled polygons, or of polylines if ``lines``."""
    allp = np.concatenate(polys, axis=0)
    box = _roi(img.shape, allp, pad=2 + 3 * blur + lines)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = [_fixed(p, x0, y0) for p in polys]
    if lines > 0:
        cv2.polylines(m, fixed, closed, 255, thickness=max(int(round(lines)), 1),
                      lineType=cv2.LINE_AA, shift=_SHIFT)
    else:
        cv2.fillPoly(m, fixed, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
    mf = m.astype(np.float32) * (1.0 / 255.0)
    if blur > 0:
        mf = cv2.GaussianBlur(mf, (0, 0), blur)
    return mf, box


def _clipped_mask(img: np.ndarray, polys: list[np.ndarray], blur: float, lines: float, closed: bool,
                  clip: np.ndarray | None) -> tuple[np.ndarray, tuple[slice, slice]] | None:
    """:func:`_mask` times the ``clip`` mask, with the image slices it covers."""
    res = _mask(img, polys, blur, lines, closed)
    if res is None:
        return None
    m, (x0, y0, x1, y1) = res
    if clip is not None:
        m = m * clip[y0:y1, x0:x1]
    return m, (slice(y0, y1), slice(x0, x1))


def paint(img: np.ndarray, polys: list[np.ndarray], colour, alpha: float = 1.0, blur: float = 0.0,
          lines: float = 0.0, closed: bool = True, clip: np.ndarray | None = None) -> None:
    """Blend ``colour`` into ``img`` under the polygons' (or polylines') coverage."""
    res = _clipped_mask(img, polys, blur, lines, closed, clip)
    if res is not None:
        m, box = res
        roi = img[box]
        roi += (np.asarray(colour, np.float32) - roi) * (m * alpha)[..., None]


def shade(img: np.ndarray, polys: list[np.ndarray], factor: float, blur: float = 0.0,
          clip: np.ndarray | None = None, lines: float = 0.0, closed: bool = True) -> None:
    """Multiply ``img`` by ``factor`` under the (blurred) coverage of the polygons."""
    res = _clipped_mask(img, polys, blur, lines, closed, clip)
    if res is not None:
        m, box = res
        img[box] *= (1.0 - (1.0 - factor) * m)[..., None]


def full_mask(shape: tuple[int, ...], polys: list[np.ndarray], blur: float = 0.0) -> np.ndarray:
    """Coverage mask of the polygons over the whole image."""
    m = np.zeros(shape[:2], np.float32)
    res = _mask(np.empty(shape[:2] + (1,), np.float32), polys, blur)
    if res is not None:
        sub, (x0, y0, x1, y1) = res
        m[y0:y1, x0:x1] = sub
    return m


def catmull_rom(pts: np.ndarray, closed: bool, per_segment: int = 6) -> np.ndarray:
    """Smooth curve through the points (uniform Catmull–Rom spline), ``per_segment`` samples a segment."""
    p = np.asarray(pts, dtype=np.float64)
    if closed:
        ext = np.concatenate([p[-1:], p, p[:2]])
        segs = len(p)
    else:
        ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
        segs = len(p) - 1
    t = _CR_T.get(per_segment)
    if t is None:
        tt = np.linspace(0, 1, per_segment, endpoint=False)[:, None]
        t = _CR_T[per_segment] = (tt, tt ** 2, tt ** 3)
    t1, t2, t3 = t
    p0, p1, p2, p3 = (ext[i:i + segs][:, None, :] for i in range(4))
    curve = 0.5 * ((2 * p1) + (-p0 + p2) * t1 + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                   + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)
    curve = curve.reshape(-1, 2)
    return curve if closed else np.concatenate([curve, p[-1:]], axis=0)


_CR_T: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def ellipse(centre, rx: float, ry: float, angle: float = 0.0, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(angle), np.sin(angle)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)
