"""Face alignment: a similarity transform from eye and mouth centres to a canonical template, and the crop.

The template places the eye centres at (0.35, 0.38) and (0.65, 0.38) and the mouth centre at (0.5, 0.69)
of a ``crop_size`` square: a loose face crop with the whole face and some context, like the loose
VoxCeleb1 tracks the reference resized to 128 px before its 112 px random crop.
"""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATE = np.array([[0.35, 0.38], [0.65, 0.38], [0.5, 0.69]])


def anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """Image-left eye centre, image-right eye centre and mouth centre from 68 iBUG landmarks."""
    return np.stack([landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[48:68].mean(0)])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 least-squares similarity (rotation, uniform scale, translation; no reflection) src → dst."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - m[:, :2] @ ms
    return m


def align_face(rgb: np.ndarray, landmarks: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop uint8 crop_size², 2×3 transform frame → crop, landmarks in crop coordinates)."""
    m = similarity(anchor_points(landmarks), TEMPLATE * crop_size)
    crop = cv2.warpAffine(rgb, m, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    lm_crop = landmarks @ m[:, :2].T + m[:, 2]
    return crop, m.astype(np.float32), lm_crop.astype(np.float32)


def is_degenerate(landmarks: np.ndarray, box: np.ndarray) -> bool:
    """True when landmarks cannot define an alignment (collapsed eyes, non-finite values)."""
    if not np.isfinite(landmarks).all():
        return True
    a = anchor_points(landmarks)
    iod = np.linalg.norm(a[1] - a[0])
    return bool(iod < 0.1 * max(box[2] - box[0], 1.0))
