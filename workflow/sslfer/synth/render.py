"""Rasterise a synthetic face: identity + expression + pose + lighting → RGB image and its 68 landmarks.

Everything is drawn with OpenCV primitives on a float32 RGB canvas, anti-aliased and sub-pixel
(``shift=4``), only inside each primitive's bounding box so that a 224-px frame costs a few ms. The
facial features are drawn *through* the projected landmarks (:mod:`sslfer.synth.geometry`): the eye
outline passes through 36–47, the lips through 48–67, the brows' upper edge through 17–26, the nostril
base through 31–35, the face contour through 0–16. Shading (a radial fall-off of the skin, eye sockets,
nose side and under-nose shadows, directional light) makes the faces look enough like faces for
HOG/CNN face detectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .geometry import BROW_L, BROW_R, EYE_L, EYE_R, JAW, Pose, landmarks_3d, project, rotated_depth
from .identity import Identity
from .draw import ellipse, full_mask, paint
from .face_parts import (draw_brow, draw_ears, draw_eye, draw_glasses, draw_hair_back, draw_hair_front, draw_mouth,
                         draw_neck, draw_nose, draw_wrinkles, head_arc)


@dataclass(frozen=True)
class Lighting:
    """Directional light (angle in radians, strength of the gradient) and overall exposure/tint."""

    angle: float = 0.0
    strength: float = 0.15
    exposure: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Camera:
    """Where the face sits in the image and how the sensor degrades it."""

    size: tuple[int, int]            # (height, width)
    centre: tuple[float, float]      # pixel position of the midpoint between the eyes (frontal)
    scale: float                     # pixels per face unit (half face width)
    noise_std: float = 0.015
    blur_sigma: float = 0.5



def render_face(ident: Identity, actions: np.ndarray, pose: Pose, camera: Camera, lighting: Lighting,
                background: np.ndarray, rng: np.random.Generator, gaze: tuple[float, float] = (0.0, 0.0),
                shirt: tuple[float, float, float] = (0.3, 0.35, 0.45)) -> tuple[np.ndarray, np.ndarray]:
    """Render one face.

    Returns the RGB uint8 image (camera.size) and the 68×2 float32 landmarks in pixel coordinates.
    ``background`` is a float32 RGB image of the same size (see :func:`make_background`).
    """
    scale, centre = camera.scale, camera.centre

    rot = pose.rotation()

    def pp(p3: np.ndarray) -> np.ndarray:
        return project(p3, rot, scale, centre)

    lm3 = landmarks_3d(ident, actions)
    lm = pp(lm3)
    img = background.astype(np.float32, copy=True)
    skin = np.array(ident.skin, np.float32)

    draw_hair_back(img, ident, pp)
    draw_neck(img, ident, pp, skin, shirt)
    draw_ears(img, pp, skin)
    # head: jaw contour + skull arc
    arc = head_arc(ident, widen=0.0, lift=0.0)
    head = np.concatenate([lm[JAW], pp(arc)[1:-1]], axis=0)
    paint(img, [head], skin, blur=0.01 * scale)
    face_clip = full_mask(img.shape, [head])
    # radial fall-off of the skin towards the contour and a soft chin shadow
    falloff = full_mask(img.shape, [head], blur=0.22 * scale)
    img *= (1.0 - 0.35 * face_clip * (1.0 - falloff))[..., None]
    cheeks = [ellipse(lm[k] + [0, -0.1 * scale], 0.18 * scale, 0.12 * scale) for k in (3, 13)]
    paint(img, cheeks, np.clip(skin * [1.05, 0.85, 0.85], 0, 1), alpha=0.25, blur=0.1 * scale, clip=face_clip)
    if ident.beard:
        beard = np.concatenate([lm[3:14], lm[[35]] + [0.25 * scale, 0.02 * scale],
                                lm[[33]] + [0, 0.03 * scale], lm[[31]] + [-0.25 * scale, 0.02 * scale]])
        paint(img, [beard], np.array(ident.hair) * 0.9, alpha=ident.beard_density, blur=0.05 * scale,
              clip=face_clip)
    draw_wrinkles(img, lm, actions, scale)
    draw_nose(img, lm, scale, skin, lighting.angle)
    draw_mouth(img, lm, ident, scale)
    # draw the farther eye first so that a turned head occludes correctly enough
    depth = rotated_depth(lm3, pose)
    eye_order = sorted(((EYE_R, BROW_R), (EYE_L, BROW_L)), key=lambda e: depth[e[0]].mean())
    for eye, brow in eye_order:
        draw_eye(img, lm, eye, ident, scale, gaze, skin)
        draw_brow(img, lm, brow, ident, scale)
    if ident.glasses:
        draw_glasses(img, lm, scale)
    draw_hair_front(img, ident, pp, scale)

    # light: directional gradient + exposure + tint, then sensor blur and noise
    h, w = img.shape[:2]
    yy, xx = _grid(h, w)
    c, s = np.cos(lighting.angle) / (2.0 * scale), np.sin(lighting.angle) / (2.0 * scale)
    gain = lighting.strength * (xx * c + yy * s)
    gain += 1.0 - lighting.strength * (centre[0] * c + centre[1] * s)
    np.clip(gain, 0.4, 1.6, out=gain)
    img *= gain[..., None] * (np.asarray(lighting.tint, np.float32) * (255.0 * lighting.exposure))
    if camera.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), camera.blur_sigma)
    if camera.noise_std > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(255.0 * camera.noise_std)
    img += 0.5
    out = np.clip(img, 0, 255).astype(np.uint8)
    return out, lm.astype(np.float32)


@lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def make_background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A plausible indoor background: a two-colour gradient with a few soft shapes (float32 RGB)."""
    h, w = size
    c1, c2 = rng.uniform(0.15, 0.85, 3), rng.uniform(0.15, 0.85, 3)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = ((xx / w - 0.5) * np.cos(ang) + (yy / h - 0.5) * np.sin(ang)) + 0.5
    img = (c1[None, None] * (1 - t[..., None]) + c2[None, None] * t[..., None]).astype(np.float32)
    for _ in range(int(rng.integers(2, 6))):
        colour = rng.uniform(0.1, 0.9, 3)
        if rng.uniform() < 0.5:
            x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
            pts = np.array([[x0, y0], [x0 + rng.uniform(0.1, 0.5) * w, y0],
                            [x0 + rng.uniform(0.1, 0.5) * w, y0 + rng.uniform(0.1, 0.6) * h],
                            [x0, y0 + rng.uniform(0.1, 0.6) * h]])
        else:
            pts = ellipse(rng.uniform(0, 1, 2) * [w, h], rng.uniform(0.05, 0.3) * w, rng.uniform(0.05, 0.3) * h)
        paint(img, [pts], colour, alpha=rng.uniform(0.3, 0.8), blur=rng.uniform(0.5, 4.0))
    return img
