"""Locate model files on disk, with one clear error naming the setting and the path when one is missing.

dlib's models ship in the ``face-recognition-models`` package. Its ``__init__`` imports
``pkg_resources``, which new setuptools no longer provides, so the package is located with
:func:`importlib.util.find_spec` (which does not execute it) and the files are loaded by path.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DLIB_MODELS = {
    "shape_predictor_68": "shape_predictor_68_face_landmarks.dat",
    "shape_predictor_5": "shape_predictor_5_face_landmarks.dat",
    "mmod_detector": "mmod_human_face_detector.dat",
    "face_recognition": "dlib_face_recognition_resnet_model_v1.dat",
}


class ModelFileError(FileNotFoundError):
    """A model file that a configured backend needs is not where the configuration says."""


def dlib_model_path(name: str) -> Path:
    """Path of one of dlib's model files (``name`` is a key of :data:`DLIB_MODELS`)."""
    if name not in DLIB_MODELS:
        raise KeyError(f"unknown dlib model {name!r}; known: {', '.join(DLIB_MODELS)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            "dlib model files: the package 'face-recognition-models' is not installed "
            "(it is in envs/requirements.txt; run `make setup`)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DLIB_MODELS[name]
    if not path.is_file():
        raise ModelFileError(f"dlib model file {DLIB_MODELS[name]} not found at {path}")
    return path


def require_file(path: str | Path, setting: str, hint: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`ModelFileError` naming ``setting``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelFileError(f"config {setting}: model file not found at {p}" + (f" ({hint})" if hint else ""))
    return p
