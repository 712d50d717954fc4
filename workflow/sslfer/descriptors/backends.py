"""Descriptor backends: per-region (eye, mouth) float32 vectors from aligned crops and their landmarks.

A backend is called on a chunk of whole tracks: ``backend(crops, landmarks, tracks) -> (eye, mouth)`` with
``crops`` ``(n, S, S, 3)`` uint8 RGB, ``landmarks`` ``(n, 68, 2)`` crop coordinates (finite) and ``tracks``
the ``(n,)`` track id of each frame. The frame descriptor is the L2-normalised ``concat(eye, mouth)``.

``geometry_hog`` (offline default, no weights): per region, a HOG of the grey patch (3×3 blocks of 2×2
cells, 9 bins: 324 values) and the region's landmark shape (brows 17–26 + eyes 36–47, or mouth 48–67;
centred on the region centroid, in interocular distances). Each block is expressed relative to its track's
median, which removes the person-specific neutral face (the track median stands for the resting face of a
talking-head track), and divided by a fixed typical deviation so that no block dominates. A constant
component per region makes frames with little deviation (near-neutral) similar to each other instead of
pointing in random directions. Each step serves the descriptor's one job, nearest-neighbour expression
agreement across identities, which ``benchmarks/descriptor_throughput.py`` measures with its speed.

``resnet18_imagenet`` (the paper's): frozen torchvision ResNet-18, ``fc = Identity``, eval mode, no
autograd, ImageNet normalisation, on the RGB patches; 512 values per region, per frame (no track step).
Its weights are never downloaded: they are read from ``descriptors.resnet18_weights``. It runs on the
config key ``device`` (:mod:`sslfer.device`; ``make_backend(cfg, device)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..model_files import RESNET18_FILE, descriptor_files, require, torch_hub_dir
from ..files import sha256_file
from .patches import extract_patches

BACKENDS = ("geometry_hog", "resnet18_imagenet")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BROWS_EYES = np.r_[17:27, 36:48]
MOUTH_POINTS = np.r_[48:68]
#: Typical norm of each track-centred block (median over frames of two synthetic corpora, 0.34/0.59/0.09/0.17
#: in both): eye HOG, mouth HOG, eye geometry, mouth geometry. Their ratios, to each other and to the
#: neutral constant, are what matter.
BLOCK_SCALE = {"eye_hog": 0.34, "mouth_hog": 0.59, "eye_geo": 0.09, "mouth_geo": 0.17}
GEOMETRY_WEIGHT = 0.5
#: The constant component of each region (both together: 1.0 = one typical block deviation).
NEUTRAL_BIAS = 1.0 / np.sqrt(2.0)


class DescriptorBackend(Protocol):
    """What :func:`describe_shard` needs from a backend."""

    name: str
    dims: tuple[int, int]
    uses_tracks: bool   # True: a frame's vector depends on the other frames of its track
    info: dict          # provenance: backend name, dims and model files with their hashes

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ...


def region_shape(landmarks: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(n, 2k)`` shape of the region ``points``: centred on its centroid, in interocular distances."""
    lm = np.asarray(landmarks, np.float64)
    iod = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
    pts = lm[:, points]
    pts = (pts - pts.mean(1, keepdims=True)) / np.maximum(iod, 1e-6)[:, None, None]
    return pts.reshape(len(lm), -1)


def track_centred(x: np.ndarray, tracks: np.ndarray) -> np.ndarray:
    """``x`` minus the per-track median (rows grouped by ``tracks``)."""
    out = np.empty_like(x, dtype=np.float64)
    _, inverse = np.unique(tracks, return_inverse=True)
    for g in range(inverse.max(initial=-1) + 1):
        rows = inverse == g
        out[rows] = x[rows] - np.median(x[rows], axis=0)
    return out


class GeometryHog:
    """The offline default: track-centred HOG + landmark shape of the eye/brow and mouth regions."""

    name = "geometry_hog"
    uses_tracks = True

    def __init__(self, patch_size: int = 64):
        if patch_size % 4:
            raise ValueError(f"descriptors.patch_size must be a multiple of 4 for geometry_hog, got {patch_size}")
        self.patch_size = patch_size
        half, quarter = patch_size // 2, patch_size // 4
        self.hog = cv2.HOGDescriptor((patch_size, patch_size), (half, half), (quarter, quarter), (quarter, quarter), 9)
        n_hog = int(self.hog.getDescriptorSize())
        self.dims = (n_hog + 2 * len(BROWS_EYES) + 1, n_hog + 2 * len(MOUTH_POINTS) + 1)
        self.info = {"backend": self.name, "patch_size": patch_size, "dims": list(self.dims)}

    def hog_features(self, patches: np.ndarray) -> np.ndarray:
        """``(n, 324)`` HOG of each grey-converted RGB patch."""
        return np.stack([self.hog.compute(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY)) for p in patches]).astype(np.float64)

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eyes, mouths = extract_patches(crops, landmarks, self.patch_size)
        bias = np.full((len(crops), 1), NEUTRAL_BIAS)

        def region(hog: np.ndarray, geo: np.ndarray, key: str) -> np.ndarray:
            h = track_centred(hog, tracks) / BLOCK_SCALE[f"{key}_hog"]
            g = track_centred(geo, tracks) * (GEOMETRY_WEIGHT / BLOCK_SCALE[f"{key}_geo"])
            return np.concatenate([h, g, bias], axis=1).astype(np.float32)

        return (region(self.hog_features(eyes), region_shape(landmarks, BROWS_EYES), "eye"),
                region(self.hog_features(mouths), region_shape(landmarks, MOUTH_POINTS), "mouth"))


def default_resnet18_weights() -> Path:
    """torchvision's cache file of the ImageNet ResNet-18 weights (``<torch hub dir>/checkpoints``)."""
    return torch_hub_dir() / "checkpoints" / RESNET18_FILE


class ResNet18ImageNet:
    """The paper's descriptor: frozen ResNet-18 features (512-d) of each 64×64 RGB patch."""

    name = "resnet18_imagenet"
    dims = (512, 512)
    uses_tracks = False

    def __init__(self, weights: str | Path | None = None, patch_size: int = 64, batch_size: int = 256,
                 device: str | object = "cpu"):
        import torch
        import torchvision

        from ..device import resolve_device

        self.device = resolve_device(device)

        (path,) = require(descriptor_files(self.name, weights))
        self.info = {"backend": self.name, "patch_size": patch_size, "dims": list(self.dims),
                     "weights_file": str(path), "weights_sha256": sha256_file(path)}
        model = torchvision.models.resnet18(weights=None)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.fc = torch.nn.Identity()
        self.model = model.eval().requires_grad_(False).to(self.device)
        self.patch_size, self.batch_size = patch_size, batch_size
        self.mean = (torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0).to(self.device)
        self.std = (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0).to(self.device)

    def features(self, patches: np.ndarray) -> np.ndarray:
        """``(n, 512)`` features of ``(n, P, P, 3)`` uint8 RGB patches, in batches of ``batch_size``."""
        import torch

        out = np.empty((len(patches), 512), np.float32)
        with torch.no_grad():
            for start in range(0, len(patches), self.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(patches[start:start + self.batch_size]))
                x = x.to(self.device)            # the result is read back at once: nothing to overlap
                x = (x.permute(0, 3, 1, 2).float() - self.mean) / self.std
                out[start:start + len(x)] = self.model(x).cpu().numpy()
        return out

    def __call__(self, crops: np.ndarray, landmarks: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eyes, mouths = extract_patches(crops, landmarks, self.patch_size)
        return self.features(eyes), self.features(mouths)


@dataclass(frozen=True)
class DescriptorConfig:
    """The ``descriptors`` settings that shape a shard's descriptors."""

    backend: str = "geometry_hog"
    resnet18_weights: str | None = None      # resnet18_imagenet: None = torchvision's cache under the hub dir
    patch_size: int = 64
    min_track_frames: int = 8                # geometry_hog: tracks with fewer frames with landmarks get none
    batch_size: int = 256                    # resnet18_imagenet: patches per forward pass

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"config descriptors.backend: unknown backend {self.backend!r}; "
                             f"known: {', '.join(BACKENDS)}")

    @classmethod
    def from_config(cls, section: dict) -> DescriptorConfig:
        """From the ``descriptors`` config section (defaults filled in by the schema)."""
        return cls(backend=section["backend"], resnet18_weights=section.get("resnet18_weights"),
                   patch_size=section["patch_size"], min_track_frames=section["min_track_frames"],
                   batch_size=section["batch_size"])


def make_backend(cfg: DescriptorConfig, device: str | object = "cpu") -> DescriptorBackend:
    """The backend ``cfg.backend``; ``device`` (the config key ``device``) is where ``resnet18_imagenet`` runs
    (``geometry_hog`` is CPU code)."""
    if cfg.backend == "geometry_hog":
        return GeometryHog(cfg.patch_size)
    return ResNet18ImageNet(cfg.resnet18_weights, cfg.patch_size, cfg.batch_size, device)
