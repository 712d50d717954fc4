"""Realism floor of the synthetic corpus, measured with dlib (HOG detector + 68-point predictor).

For a random sample of video frames and evaluation images: the share where exactly one face is found,
and the mean landmark error against the renderer's ground truth in inter-ocular units (distance of the
outer eye corners 36–45, the 300-W normaliser). Used by the tests and by ``python -m sslfer synth-check``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import dlib
import numpy as np
import pyarrow.parquet as pq

from ..model_files import dlib_model_path
from ..parquet import landmarks_numpy

GROUPS = {"jaw": slice(0, 17), "brows": slice(17, 27), "nose": slice(27, 36), "eyes": slice(36, 48),
          "mouth": slice(48, 68)}


@dataclass
class RealismReport:
    """Detection and landmark figures for one sample."""

    name: str
    n: int
    one_face: float
    no_face: float
    several_faces: float
    landmark_error_iod: float         # mean over images with one face
    landmark_error_iod_p95: float
    group_error_iod: dict[str, float]

    def as_dict(self) -> dict:
        """Plain dict (for JSON / printing)."""
        return asdict(self)


class DlibMeasure:
    """dlib HOG frontal detector + 68-point shape predictor, loaded once."""

    def __init__(self, upsample: int = 1) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68")))
        self.upsample = upsample

    def measure(self, name: str, images: list[np.ndarray], truth: np.ndarray) -> RealismReport:
        """Detect faces in RGB/grey uint8 ``images`` and compare landmarks with ``truth`` (n, 68, 2)."""
        counts, errors = [], []
        for img, gt in zip(images, truth):
            dets = self.detector(img, self.upsample)
            counts.append(len(dets))
            if len(dets) == 1:
                shape = self.predictor(img, dets[0])
                pred = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
                iod = np.linalg.norm(gt[45] - gt[36])
                errors.append(np.linalg.norm(pred - gt, axis=1) / iod)
        c = np.array(counts)
        e = np.array(errors) if errors else np.full((1, 68), np.nan)
        per_image = e.mean(axis=1)
        return RealismReport(name, len(c), float(np.mean(c == 1)), float(np.mean(c == 0)), float(np.mean(c > 1)),
                             float(np.mean(per_image)), float(np.percentile(per_image, 95)),
                             {g: float(e[:, s].mean()) for g, s in GROUPS.items()})


def read_video_frames(path: str | Path, indices: list[int]) -> list[np.ndarray]:
    """RGB frames at ``indices`` of a video, decoded sequentially (no seeking)."""
    want = sorted(set(indices))
    out: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in want:
                out[i] = frame.to_ndarray(format="rgb24")
            if i >= want[-1]:
                break
    return [out[i] for i in indices]


def sample_videos(root: Path, n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` random frames of the synthetic videos with their ground-truth landmarks."""
    gt = pq.read_table(root / "groundtruth" / "videos.parquet", columns=["path", "frame_idx", "landmarks"])
    pick = np.sort(rng.choice(gt.num_rows, min(n, gt.num_rows), replace=False))
    sub = gt.take(pick)
    paths = sub.column("path").to_pylist()
    frames = sub.column("frame_idx").to_numpy()
    images: list[np.ndarray] = []
    for p in dict.fromkeys(paths):
        idx = [int(f) for q, f in zip(paths, frames) if q == p]
        images += read_video_frames(root / p, idx)
    return images, landmarks_numpy(sub.column("landmarks"))


def sample_stills(root: Path, dataset: str, n: int, rng: np.random.Generator) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` random face images (AffectNet or LFW style) with their ground-truth landmarks."""
    gt = pq.read_table(root / "groundtruth" / f"{dataset}.parquet")
    if "has_face" in gt.column_names:
        gt = gt.filter(gt.column("has_face"))
    pick = np.sort(rng.choice(gt.num_rows, min(n, gt.num_rows), replace=False))
    sub = gt.take(pick)
    images = [cv2.imread(str(root / p))[..., ::-1].copy() for p in sub.column("path").to_pylist()]
    return images, landmarks_numpy(sub.column("landmarks"))


def sample_fer2013(root: Path, n: int, rng: np.random.Generator, upscale: int = 4) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` random FER2013 images, upscaled ``upscale``× (48 px is below the HOG window), + landmarks."""
    import pandas as pd

    df = pd.read_csv(root / "fer2013" / "fer2013.csv")
    gt = pq.read_table(root / "groundtruth" / "fer2013.parquet", columns=["landmarks"])
    pick = np.sort(rng.choice(len(df), min(n, len(df)), replace=False))
    images = []
    for i in pick:
        px = np.array(df["pixels"].iloc[i].split(), np.uint8).reshape(48, 48)
        images.append(cv2.resize(px, (48 * upscale, 48 * upscale), interpolation=cv2.INTER_CUBIC))
    lm = landmarks_numpy(gt.column("landmarks").take(pick)) * upscale + (upscale - 1) / 2
    return images, lm


def check_corpus(root: str | Path, n: int = 200, seed: int = 0) -> list[RealismReport]:
    """Realism figures for every dataset present under ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    m = DlibMeasure(upsample=1)
    reports = []
    if (root / "groundtruth" / "videos.parquet").exists():
        reports.append(m.measure("videos", *sample_videos(root, n, rng)))
    for ds in ("affectnet", "lfw"):
        if (root / "groundtruth" / f"{ds}.parquet").exists():
            reports.append(m.measure(ds, *sample_stills(root, ds, n, rng)))
    if (root / "groundtruth" / "fer2013.parquet").exists():
        reports.append(DlibMeasure(upsample=0).measure("fer2013 (×4)", *sample_fer2013(root, n, rng)))
    return reports


def format_reports(reports: list[RealismReport]) -> str:
    """A plain-text table of the reports."""
    lines = [f"{'sample':<14}{'n':>5}{'1 face':>9}{'0 faces':>9}{'>1':>6}{'err/IOD':>9}{'p95':>7}  "
             + " ".join(f"{g:>6}" for g in GROUPS)]
    for r in reports:
        lines.append(f"{r.name:<14}{r.n:>5}{r.one_face:>9.3f}{r.no_face:>9.3f}{r.several_faces:>6.3f}"
                     f"{r.landmark_error_iod:>9.4f}{r.landmark_error_iod_p95:>7.3f}  "
                     + " ".join(f"{r.group_error_iod[g]:>6.3f}" for g in GROUPS))
    return "\n".join(lines)
