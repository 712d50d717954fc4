"""Random draws of the things around a face: camera placement, pose, light, background, clothes.

One function per kind of shot, so videos, AffectNet-, FER2013- and LFW-style stills differ where the real
datasets differ (framing, resolution, pose range) and share everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Pose
from .identity import Identity
from .render import Camera, Lighting, make_background, render_face


@dataclass(frozen=True)
class Framing:
    """How a kind of shot places the face: eye-midpoint position and face size as fractions of the image."""

    size: tuple[int, int]
    centre: tuple[float, float]        # eye midpoint (x, y) as a fraction of (width, height)
    centre_jitter: float               # ± fraction of the width
    scale: tuple[float, float]         # half face width as a fraction of the image width (min, max)
    max_yaw: float
    max_pitch: float
    max_roll: float
    noise_std: tuple[float, float] = (0.008, 0.025)


VIDEO_224 = Framing((224, 224), (0.5, 0.44), 0.03, (0.19, 0.23), 15, 8, 6)
AFFECTNET = Framing((256, 256), (0.5, 0.42), 0.06, (0.17, 0.24), 16, 10, 8)
FER2013 = Framing((96, 96), (0.5, 0.38), 0.02, (0.33, 0.37), 12, 8, 6, noise_std=(0.01, 0.03))
LFW = Framing((250, 250), (0.5, 0.45), 0.015, (0.155, 0.17), 15, 8, 5)


def random_pose(framing: Framing, rng: np.random.Generator) -> Pose:
    """A head pose within the framing's ranges."""
    return Pose(rng.uniform(-framing.max_yaw, framing.max_yaw), rng.uniform(-framing.max_pitch, framing.max_pitch),
                rng.uniform(-framing.max_roll, framing.max_roll))


def random_camera(framing: Framing, rng: np.random.Generator) -> Camera:
    """Face placement and sensor settings for one shot."""
    h, w = framing.size
    cx = (framing.centre[0] + rng.uniform(-framing.centre_jitter, framing.centre_jitter)) * w
    cy = (framing.centre[1] + rng.uniform(-framing.centre_jitter, framing.centre_jitter)) * h
    return Camera(framing.size, (cx, cy), rng.uniform(*framing.scale) * w,
                  noise_std=rng.uniform(*framing.noise_std), blur_sigma=rng.uniform(0.3, 0.7))


def random_lighting(rng: np.random.Generator) -> Lighting:
    """Directional light of random angle/strength, exposure and a mild colour tint."""
    tint = np.clip(1.0 + rng.normal(0, 0.04, 3), 0.85, 1.15)
    return Lighting(rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.1),
                    tuple(float(v) for v in tint))


def random_shirt(rng: np.random.Generator) -> tuple[float, float, float]:
    """A clothing colour."""
    return tuple(float(v) for v in rng.uniform(0.1, 0.8, 3))


def render_still(ident: Identity, actions: np.ndarray, framing: Framing,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Pose]:
    """One still photo of ``ident`` showing ``actions``: (RGB uint8 image, 68×2 landmarks, pose)."""
    pose = random_pose(framing, rng)
    camera = random_camera(framing, rng)
    background = make_background(framing.size, rng)
    gaze = tuple(rng.uniform(-1, 1, 2))
    img, lm = render_face(ident, actions, pose, camera, random_lighting(rng), background, rng, gaze=gaze,
                          shirt=random_shirt(rng))
    return img, lm, pose
