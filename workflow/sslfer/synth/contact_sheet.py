"""QC contact sheet of the synthetic corpus: identities (rows) × the 8 expression classes (columns)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .expression import CLASSES, expression_vector
from .geometry import Pose
from .identity import sample_identity
from .render import Camera, Lighting, make_background, render_face


def contact_sheet(identity_numbers: list[int], seed: int, tile: int = 160, intensity: float = 1.0) -> np.ndarray:
    """RGB image: one row per identity, one column per class at ``intensity``, labelled."""
    header = 22
    rows = [np.full((header, tile * len(CLASSES), 3), 255, np.uint8)]
    for c, name in enumerate(CLASSES):
        cv2.putText(rows[0], name, (c * tile + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for number in identity_numbers:
        ident = sample_identity(number, seed)
        rng = np.random.default_rng([seed, 9, number])
        background = make_background((tile, tile), rng)
        camera = Camera((tile, tile), (tile / 2, tile * 0.43), tile * 0.21, noise_std=0.01, blur_sigma=0.4)
        light = Lighting(rng.uniform(0, 2 * np.pi), 0.15, 1.0)
        row = []
        for c in range(len(CLASSES)):
            img, _ = render_face(ident, expression_vector(c, intensity), Pose(0, 0, 0), camera, light, background, rng)
            row.append(img)
        strip = np.concatenate(row, axis=1)
        cv2.putText(strip, ident.name, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(strip)
    return np.concatenate(rows, axis=0)


def write_contact_sheet(path: str | Path, identity_numbers: list[int], seed: int) -> Path:
    """Render :func:`contact_sheet` to a PNG at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), contact_sheet(identity_numbers, seed)[..., ::-1]):
        raise OSError(f"could not write {path}")
    return path
