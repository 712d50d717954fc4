"""Which model files each backend needs, where they are looked for, and one clear error when one is missing.

This module is the single place that knows a backend's files: the backends load through
:func:`require` and the config check (:func:`missing_model_files`, called by
:func:`sslfer.config.prepare_config` before any job starts) reports the same files with the same message,
``config key '<setting>': <what> not found at <path> (<hint>)``, naming the setting that locates the file.

============================  =============================================================================
backend                       files
============================  =============================================================================
detect ``dlib_hog``           none (built into dlib)
detect ``dlib_mmod``          ``mmod_human_face_detector.dat`` of ``face-recognition-models``
detect ``opencv_haar``        none (OpenCV ships the cascade)
detect ``insightface``        ``<preprocess.detect.model_dir>/det_10g.onnx``
landmarks ``dlib68``          ``shape_predictor_68_face_landmarks.dat`` of ``face-recognition-models``
landmarks ``fan``             ``preprocess.landmarks.fan_weights`` (default ``<torch hub>/checkpoints/2DFAN4-…``)
landmarks ``insightface``     ``<preprocess.landmarks.model_dir>/1k3d68.onnx``
descriptors ``geometry_hog``  none
descriptors ``resnet18_…``    ``descriptors.resnet18_weights`` (default ``<torch hub>/checkpoints/resnet18-…``)
============================  =============================================================================

``model_dir`` defaults to ``~/.insightface/models/buffalo_l``. Nothing is ever downloaded.

dlib's models ship in the ``face-recognition-models`` package. Its ``__init__`` imports
``pkg_resources``, which new setuptools no longer provides, so the package is located with
:func:`importlib.util.find_spec` (which does not execute it) and the files are loaded by path.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .files import sha256_file

DLIB_MODELS = {
    "shape_predictor_68": "shape_predictor_68_face_landmarks.dat",
    "shape_predictor_5": "shape_predictor_5_face_landmarks.dat",
    "mmod_detector": "mmod_human_face_detector.dat",
    "face_recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
DLIB_PACKAGE_HINT = "the package 'face-recognition-models' is not installed (it is in envs/requirements.txt; run `make setup`)"
DEFAULT_INSIGHTFACE_DIR = "~/.insightface/models/buffalo_l"
INSIGHTFACE_DETECTOR = "det_10g.onnx"
INSIGHTFACE_68 = "1k3d68.onnx"
FAN_WEIGHTS_FILE = "2DFAN4-11f355bf06.pth.tar"
RESNET18_FILE = "resnet18-f37072fd.pth"
#: torchvision checks this prefix of the file's SHA-256 when it downloads it (the name carries it); so do we,
#: for a file of that name (one of another name is taken as the user's own weights)
RESNET18_SHA256_PREFIX = "f37072fd"


class ModelFileError(FileNotFoundError):
    """A model file that a configured backend needs is not where the configuration says."""


@dataclass(frozen=True)
class ModelFile:
    """One file a backend needs: the config key that locates (or chooses) it, its path, what it is.

    ``path`` is None when the package that ships the file is not installed.
    """

    setting: str
    path: Path | None
    hint: str
    sha256_prefix: str | None = None      # the start of the file's SHA-256 where its publisher fixes it

    def problem(self) -> str | None:
        """None if the file is there (with the expected digest), else the message naming the setting and path."""
        if self.path is None:
            return f"config key '{self.setting}': {self.hint}"
        if not self.path.is_file():
            return f"config key '{self.setting}': model file {self.path.name} not found at {self.path} ({self.hint})"
        if self.sha256_prefix:
            digest = sha256_file(self.path)
            if not digest.startswith(self.sha256_prefix):
                return (f"config key '{self.setting}': {self.path} has SHA-256 {digest}, expected one starting "
                        f"{self.sha256_prefix} ({self.hint})")
        return None


def dlib_model_location(name: str) -> Path | None:
    """Where dlib's model ``name`` (a key of :data:`DLIB_MODELS`) is, or None without its package."""
    if name not in DLIB_MODELS:
        raise KeyError(f"unknown dlib model {name!r}; known: {', '.join(DLIB_MODELS)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models" / DLIB_MODELS[name]


def dlib_model_path(name: str) -> Path:
    """Path of one of dlib's model files (``name`` is a key of :data:`DLIB_MODELS`)."""
    path = dlib_model_location(name)
    if path is None:
        raise ModelFileError(f"dlib model files: {DLIB_PACKAGE_HINT}")
    if not path.is_file():
        raise ModelFileError(f"dlib model file {DLIB_MODELS[name]} not found at {path}")
    return path


def _dlib(name: str, setting: str, backend: str) -> ModelFile:
    path = dlib_model_location(name)
    hint = (f"{backend} needs {DLIB_MODELS[name]}, but {DLIB_PACKAGE_HINT}" if path is None
            else f"{backend}: dlib model of the package face-recognition-models; reinstall it")
    return ModelFile(setting, path, hint)


def torch_hub_dir() -> Path:
    """torch's hub folder (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``), where its caches live."""
    import torch

    return Path(torch.hub.get_dir())


def detector_files(backend: str, model_dir: str | Path | None = None) -> list[ModelFile]:
    """The files of face detector ``backend`` (config ``preprocess.detect``)."""
    if backend == "dlib_mmod":
        return [_dlib("mmod_detector", "preprocess.detect.backend", "dlib_mmod")]
    if backend == "insightface":
        folder = Path(model_dir or DEFAULT_INSIGHTFACE_DIR).expanduser()
        return [ModelFile("preprocess.detect.model_dir", folder / INSIGHTFACE_DETECTOR,
                          "insightface SCRFD detector of the buffalo_l pack; sslfer never downloads it")]
    return []


def landmark_files(backend: str, fan_weights: str | Path | None = None,
                   model_dir: str | Path | None = None) -> list[ModelFile]:
    """The files of landmark ``backend`` (config ``preprocess.landmarks``)."""
    if backend == "dlib68":
        return [_dlib("shape_predictor_68", "preprocess.landmarks.backend", "dlib68")]
    if backend == "fan":
        path = Path(fan_weights).expanduser() if fan_weights else torch_hub_dir() / "checkpoints" / FAN_WEIGHTS_FILE
        return [ModelFile("preprocess.landmarks.fan_weights", path,
                          "face-alignment's 2D FAN-4 weights; sslfer never downloads them")]
    if backend == "insightface":
        folder = Path(model_dir or DEFAULT_INSIGHTFACE_DIR).expanduser()
        return [ModelFile("preprocess.landmarks.model_dir", folder / INSIGHTFACE_68,
                          "insightface 68-point model of the buffalo_l pack; sslfer never downloads it")]
    return []


def descriptor_files(backend: str, weights: str | Path | None = None) -> list[ModelFile]:
    """The files of descriptor ``backend`` (config ``descriptors``)."""
    if backend == "resnet18_imagenet":
        path = Path(weights).expanduser() if weights else torch_hub_dir() / "checkpoints" / RESNET18_FILE
        return [ModelFile("descriptors.resnet18_weights", path,
                          "torchvision's ImageNet ResNet-18 (IMAGENET1K_V1); it is never downloaded: copy "
                          f"{RESNET18_FILE} there or point the setting at it",
                          sha256_prefix=RESNET18_SHA256_PREFIX if path.name == RESNET18_FILE else None)]
    return []


def config_model_files(config: dict) -> list[ModelFile]:
    """Every model file the backends chosen in ``config`` (defaults filled in) need."""
    pre = config.get("preprocess", {})
    det, lmk = pre.get("detect", {}), pre.get("landmarks", {})
    desc = config.get("descriptors", {})
    return (detector_files(det.get("backend", "dlib_hog"), det.get("model_dir"))
            + landmark_files(lmk.get("backend", "dlib68"), lmk.get("fan_weights"), lmk.get("model_dir"))
            + descriptor_files(desc.get("backend", "geometry_hog"), desc.get("resnet18_weights")))


def missing_model_files(config: dict) -> list[str]:
    """One message per model file of :func:`config_model_files` that is not there."""
    return [p for p in (f.problem() for f in config_model_files(config)) if p]


def require(files: list[ModelFile]) -> list[Path]:
    """The paths of ``files``; :class:`ModelFileError` listing every one that is missing."""
    problems = [p for p in (f.problem() for f in files) if p]
    if problems:
        raise ModelFileError("; ".join(problems))
    return [f.path for f in files]  # type: ignore[misc]  # all set: no problem means a path


def require_file(path: str | Path, setting: str, hint: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`ModelFileError` naming ``setting``."""
    (p,) = require([ModelFile(setting, Path(path).expanduser(), hint or "model file")])
    return p
