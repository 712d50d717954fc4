"""Eye and mouth patches as the reference's MaskFN defines them, from aligned crops and their landmarks.

Eye patch: bounding box of landmarks 36–47 (both eyes), x = [min, max], y = [min − margin, max + margin].
Mouth patch: bounding box of landmarks 48–67. Each box is cut out (pixels outside the crop are black),
zero-padded to a square with the box centred (the reference's ``SquarePad``) and resized to
``patch_size`` (default 64). The reference's margin is 10 px on its 128 px frames; here it scales with
the crop: ``margin = 10 · crop_size / 128`` (our crops are aligned, so the interocular distance is a
fixed 0.3 · crop_size and a fixed fraction of the crop keeps the patch's framing the same at any size).
"""

from __future__ import annotations

import cv2
import numpy as np

EYES = slice(36, 48)
MOUTH = slice(48, 68)
#: The reference's eye-box vertical margin (px) and the frame size it was used at.
REFERENCE_MARGIN_PX = 10.0
REFERENCE_SIZE = 128


def region_boxes(landmarks: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer boxes ``(n, 4)`` as x1, y1, x2, y2 (exclusive) of the eye and mouth regions."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    margin = REFERENCE_MARGIN_PX * crop_size / REFERENCE_SIZE

    def box(pts: np.ndarray, dy: float) -> np.ndarray:
        lo, hi = pts.min(1), pts.max(1)
        return np.stack([np.floor(lo[:, 0]), np.floor(lo[:, 1] - dy),
                         np.ceil(hi[:, 0]) + 1, np.ceil(hi[:, 1] + dy) + 1], 1).astype(np.int64)

    return box(lm[:, EYES], margin), box(lm[:, MOUTH], 0.0)


def square_patch(image: np.ndarray, box: np.ndarray, patch_size: int) -> np.ndarray:
    """The ``box`` of ``image`` (black outside it), centred in a zero square, resized to ``patch_size``²."""
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = max(x2 - x1, 1), max(y2 - y1, 1)
    side = max(w, h)
    canvas = np.zeros((side, side) + image.shape[2:], image.dtype)
    ox, oy = (side - w) // 2, (side - h) // 2
    sx1, sy1 = max(x1, 0), max(y1, 0)
    sx2, sy2 = min(x2, image.shape[1]), min(y2, image.shape[0])
    if sx2 > sx1 and sy2 > sy1:
        canvas[oy + sy1 - y1:oy + sy2 - y1, ox + sx1 - x1:ox + sx2 - x1] = image[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if side > patch_size else cv2.INTER_LINEAR
    return cv2.resize(canvas, (patch_size, patch_size), interpolation=interp)


def extract_patches(crops: np.ndarray, landmarks: np.ndarray, patch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Eye and mouth patches ``(n, patch_size, patch_size, C)`` of ``n`` crops with their ``(n, 68, 2)``
    crop landmarks (finite)."""
    crops = np.asarray(crops)
    n = len(crops)
    eye_boxes, mouth_boxes = region_boxes(landmarks, crops.shape[1])
    shape = (n, patch_size, patch_size) + crops.shape[3:]
    eyes, mouths = np.empty(shape, crops.dtype), np.empty(shape, crops.dtype)
    for i in range(n):
        eyes[i] = square_patch(crops[i], eye_boxes[i], patch_size)
        mouths[i] = square_patch(crops[i], mouth_boxes[i], patch_size)
    return eyes, mouths
