"""Evaluation images → aligned face crops framed exactly like the pretraining crops.

Crops use the pretraining template (:mod:`sslfer.preprocess.align`: eye centres at (0.35, 0.38)·S and
(0.65, 0.38)·S, mouth centre at (0.5, 0.69)·S, S = ``preprocess.crop_size``) and the configured detector and
landmarker (``preprocess.detect``, ``preprocess.landmarks``), so the frozen encoder sees evaluation faces
framed as it saw the training faces. Per dataset:

- **AffectNet**: aligned with the dataset's own 68 landmarks → ``ok``. Where they are absent or unusable
  (non-finite, collapsed, eye/mouth centres off the image) the face nearest the dataset's face box is
  detected and landmarked → ``detected_landmarks`` (``error`` says why).
- **FER2013** (48 px tight grey crops, no landmarks): upscaled ×4 (bicubic), detected without upsampling,
  landmarked and aligned from the upscaled image → ``ok``. Where that fails, a fixed similarity maps
  FER2013's typical eye and mouth positions (:data:`FER_ANCHORS`) onto the template →
  ``fallback_alignment``: the crop is used, ``error`` says why, and the count is logged.
- **LFW** (full 250×250 images): detected (the face nearest the image centre when there are several),
  landmarked, aligned → ``ok``.

Failures give ``no_face``, ``landmark_error`` or ``decode_error`` and no crop. Items with a crop are those
with ``crop_index >= 0``, i.e. the statuses in :data:`CROPPED`. Images are decoded without applying EXIF
orientation, so pixels match the dataset's landmark coordinates (and scikit-learn's LFW arrays).

:func:`prepare_dataset` writes ``items.parquet`` (the reader's columns, ``status``/``error`` updated, plus
``bbox``, ``det_score``, ``n_faces`` (-1 where no detector ran), ``landmarks`` (those the crop was aligned
with, source-image pixels), ``landmarks_crop``, ``transform`` (2×3 source image → crop), ``crop_file``,
``crop_index``), ``crops.npy`` (uint8 ``(n, S, S, 3)`` RGB; one slot per item that reached face processing,
filled in processing order) and, for LFW, ``pairs.parquet`` (``pair, line, fold, same, item_a, item_b,
row_a, row_b``: one row per line of ``pairs.txt``, rows into ``items.parquet``). All are written atomically;
the same inputs and settings give the same bytes, whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ..npy import atomic_crops
from ..parquet import landmarks_numpy, write_parquet
from ..preprocess.align import TEMPLATE, align_face, anchor_points, is_degenerate, similarity
from ..preprocess.detect import FaceDetector, pick_track_face
from ..preprocess.landmarks import Landmarker
from ..preprocess.shard import ShardConfig
from .datasets import read_dataset
from .datasets.items import landmark_column, status_counts

log = logging.getLogger(__name__)

#: How each dataset's faces are found: its own landmarks, the FER2013 path, or detection.
MODES = {"affectnet": "landmarks", "fer2013": "fer", "lfw": "detect"}
#: Statuses of items that have a crop.
CROPPED = ("ok", "detected_landmarks", "fallback_alignment")
FER_SCALE = 4
#: Typical image-left eye, image-right eye and mouth centres in a FER2013 crop, as fractions of its side:
#: the mean of the synthetic FER2013 ground truth (770 images of the default config: (0.340, 0.379),
#: (0.660, 0.378), (0.500, 0.722); standard deviation 0.04–0.065), rounded.
FER_ANCHORS = np.array([[0.34, 0.38], [0.66, 0.38], [0.50, 0.72]])
_WINDOW = 256          # tasks in flight with several workers (bounds the memory of pixel-carrying items)


@dataclass
class Aligned:
    """The outcome for one image."""

    status: str
    error: str | None = None
    crop: np.ndarray | None = None
    transform: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    landmarks_crop: np.ndarray | None = None
    bbox: np.ndarray | None = None
    det_score: float = math.nan
    n_faces: int = -1


def landmark_problem(landmarks: np.ndarray, shape: tuple[int, ...], box: np.ndarray | None) -> str | None:
    """Why a dataset's landmarks cannot align the face (None when they can)."""
    if not np.isfinite(landmarks).all():
        return "non-finite landmarks"
    ref = box if box is not None else np.r_[landmarks.min(0), landmarks.max(0)]
    if is_degenerate(landmarks, ref):
        return "collapsed landmarks"
    h, w = shape[:2]
    a = anchor_points(landmarks)
    if (a < [-0.1 * w, -0.1 * h]).any() or (a > [1.1 * w, 1.1 * h]).any():
        return "eye/mouth centres outside the image"
    return None


class Aligner:
    """Detector, landmarker and template of one dataset's :data:`MODES` entry, loaded once."""

    def __init__(self, mode: str, cfg: ShardConfig) -> None:
        if mode not in MODES.values():
            raise ValueError(f"unknown alignment mode {mode!r}")
        self.mode, self.size = mode, cfg.crop_size
        self.detector = FaceDetector(cfg.detector, 0 if mode == "fer" else cfg.upsample, cfg.max_side,
                                     cfg.detector_model_dir, device=cfg.device)
        self.landmarker = Landmarker(cfg.landmarks, cfg.fan_weights, cfg.device, model_dir=cfg.landmarks_model_dir)

    def __call__(self, rgb: np.ndarray, landmarks: np.ndarray | None = None, box: np.ndarray | None = None) -> Aligned:
        """Align one RGB uint8 image; ``landmarks``/``box`` are the dataset's (AffectNet), in image pixels."""
        if self.mode == "fer":
            return self._fer(rgb)
        if self.mode == "detect":
            h, w = rgb.shape[:2]
            return self._detect(rgb, np.array([0.4 * w, 0.4 * h, 0.6 * w, 0.6 * h]))
        why = "no landmarks in the dataset" if landmarks is None else landmark_problem(landmarks, rgb.shape, box)
        if why is None:
            crop, m, lm_crop = align_face(rgb, landmarks, self.size)
            return Aligned("ok", None, crop, m, landmarks, lm_crop, box)
        res = self._detect(rgb, box)
        if res.status == "ok":
            res.status, res.error = "detected_landmarks", f"{why}: aligned on detected landmarks"
        else:
            res.error = f"{why}; {res.error}"
        return res

    def _detect(self, rgb: np.ndarray, prior: np.ndarray | None) -> Aligned:
        """Detect (the face nearest ``prior``'s centre, else the largest), landmark, align."""
        dets = self.detector(rgb)
        if not len(dets):
            return Aligned("no_face", "no face found", n_faces=0)
        k = pick_track_face(dets, prior)
        box, score = dets.boxes[k], float(dets.scores[k])
        lm = self.landmarker(rgb, box)
        if is_degenerate(lm, box):
            return Aligned("landmark_error", "degenerate landmarks", bbox=box, det_score=score, n_faces=len(dets))
        crop, m, lm_crop = align_face(rgb, lm, self.size)
        return Aligned("ok", None, crop, m, lm, lm_crop, box, score, len(dets))

    def _fer(self, rgb: np.ndarray) -> Aligned:
        big = cv2.resize(rgb, None, fx=FER_SCALE, fy=FER_SCALE, interpolation=cv2.INTER_CUBIC)
        res = self._detect(big, None)
        if res.status == "ok":             # back to the 48 px image's coordinates
            res.transform = res.transform * np.array([[FER_SCALE, FER_SCALE, 1]], np.float32)
            res.landmarks, res.bbox = res.landmarks / FER_SCALE, res.bbox / FER_SCALE
            return res
        h, w = rgb.shape[:2]
        m = similarity(FER_ANCHORS * [w, h], TEMPLATE * self.size)
        crop = cv2.warpAffine(rgb, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        bbox = None if res.bbox is None else res.bbox / FER_SCALE
        return Aligned("fallback_alignment", f"{res.error}: fixed FER2013 alignment", crop, m.astype(np.float32),
                       bbox=bbox, det_score=res.det_score, n_faces=res.n_faces)


def read_image(path: str) -> tuple[np.ndarray | None, str | None]:
    """RGB uint8 pixels of an image file as stored (EXIF orientation not applied), or (None, why)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        return None, f"could not decode image {path}"
    return np.ascontiguousarray(img[..., ::-1]), None


_ALIGNER: Aligner | None = None
_Task = tuple[int, "np.ndarray | str | None", "str | None", "np.ndarray | None", "np.ndarray | None"]


def _align_task(task: _Task) -> tuple[int, Aligned]:
    row, source, error, landmarks, box = task
    if isinstance(source, str):
        source, error = read_image(source)
    if source is None:
        return row, Aligned("decode_error", error)
    return row, _ALIGNER(source, landmarks, box)


@contextlib.contextmanager
def _mapper(mode: str, cfg: ShardConfig, workers: int) -> Iterator[Callable[[Iterable[_Task]], Iterator]]:
    """An ordered map of :func:`_align_task` over tasks, in this process or in ``workers`` forked processes.

    The aligner is built here first (a missing model file fails here, with its message), then inherited by
    the workers. Fork, because spawn and forkserver re-import the main module, which in a Snakemake
    ``script:`` is the rule itself. A worker that dies (e.g. killed for memory) fails the map
    (``BrokenProcessPool``) instead of hanging it.
    """
    global _ALIGNER
    _ALIGNER = Aligner(mode, cfg)
    try:
        if workers <= 1:
            yield lambda tasks: map(_align_task, tasks)
            return
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
            def bounded(tasks: Iterable[_Task]) -> Iterator:
                it = iter(tasks)
                while batch := list(islice(it, _WINDOW)):
                    yield from pool.map(_align_task, batch, chunksize=8)
            yield bounded
    finally:
        _ALIGNER = None


def uses_gpu(cfg: ShardConfig) -> bool:
    """True when a configured detector/landmarker runs on a GPU (``device`` resolves to CUDA)."""
    from ..device import resolve_device

    gpu_backend = cfg.detector == "insightface" or cfg.landmarks in ("fan", "insightface")
    return gpu_backend and resolve_device(cfg.device).type == "cuda"


def _replace(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, name, column) if i >= 0 else table.append_column(name, column)


def prepare_dataset(name: str, cfg_dataset: dict, pre: dict, items_out: str | Path, crops_out: str | Path,
                    provenance: dict, pairs_out: str | Path | None = None, workers: int = 1,
                    device: str = "cpu") -> Counter:
    """Read evaluation dataset ``name`` (config ``datasets.<name>``), align every usable image with the
    ``preprocess`` settings ``pre``, write ``items_out``, ``crops_out`` and, for LFW, ``pairs_out``
    (default: ``pairs.parquet`` beside ``items_out``); return the item status counts."""
    items_out, crops_out = Path(items_out), Path(crops_out)
    crops_out.parent.mkdir(parents=True, exist_ok=True)
    ds = read_dataset(name, cfg_dataset, scratch=crops_out.parent)
    cfg = ShardConfig.from_config(pre, device)
    if workers > 1 and uses_gpu(cfg):
        log.info("%s faces: fan/insightface on %s, so 1 worker instead of %d (CUDA does not survive a fork)",
                 name, cfg.device, workers)
        workers = 1
    items = ds.items
    n = items.num_rows
    ids = items.column("item_id").to_pylist()
    status, error = items.column("status").to_pylist(), items.column("error").to_pylist()
    given = status.count("ok")
    boxes = items.column("bbox").to_pylist() if "bbox" in items.column_names else [None] * n
    lms = landmarks_numpy(items.column("landmarks")) if "landmarks" in items.column_names else None
    has_lm = items.column("landmarks").is_valid().to_numpy(zero_copy_only=False) if lms is not None else None
    tasks = ((row, src, err, lms[row] if has_lm is not None and has_lm[row] else None,
              None if boxes[row] is None else np.asarray(boxes[row], np.float64)) for row, src, err in ds.sources())
    out: list[Aligned | None] = [None] * n
    crop_index = np.full(n, -1, np.int64)
    with atomic_crops(crops_out, given, cfg.crop_size) as crops:   # no temporary file survives a crash
        filled = 0
        with _mapper(MODES[name], cfg, workers) as run:
            for row, res in tqdm(run(tasks), total=given, desc=f"{name} faces", mininterval=5.0, unit="image"):
                if out[row] is not None or status[row] != "ok":
                    raise RuntimeError(f"{name}: item {ids[row]} served twice or despite status {status[row]}")
                if res.crop is not None:
                    crops[filled] = res.crop
                    crop_index[row], filled = filled, filled + 1
                    res.crop = None
                out[row] = res
        unserved = [ids[r] for r in range(n) if status[r] == "ok" and out[r] is None]
        if unserved:
            raise RuntimeError(f"{name}: the reader served no pixels for {len(unserved)} items, e.g. {unserved[:3]}")
        for r, res in enumerate(out):
            if res is not None:
                status[r], error[r] = res.status, None if res.error is None else f"{ids[r]}: {res.error}"
        table = _items_table(items, out, status, error, boxes, crop_index, crops_out.name)
    counts = Counter(status)
    prov = dict(provenance, dataset=name, status_counts=status_counts(table), reader_counts=ds.counts,
                items=n, crops=filled, crop_size=cfg.crop_size,
                backends={"detect": cfg.detector, "landmarks": cfg.landmarks})
    write_parquet(table, items_out, prov)
    if ds.pairs is not None:
        write_parquet(ds.pairs, pairs_out or items_out.with_name("pairs.parquet"), prov)
    extra = ""
    if name == "fer2013":
        k = counts["fallback_alignment"]
        extra = f"; fallback alignment {k} of {given} ({k / max(given, 1):.1%})"
    log.info("%s: %d items, %d crops; status %s%s", name, n, filled, dict(sorted(counts.items())), extra)
    return counts


def _items_table(items: pa.Table, out: list[Aligned | None], status: list[str], error: list[str | None],
                 boxes: list, crop_index: np.ndarray, crop_file: str) -> pa.Table:
    """The reader's table with the alignment columns set."""
    n = items.num_rows

    def pick(attr: str, default=None) -> list:
        return [default if r is None else getattr(r, attr) for r in out]

    bbox = [b if r is None or r.bbox is None else [float(v) for v in r.bbox] for r, b in zip(out, boxes)]
    transform = [None if t is None else [float(v) for v in np.ravel(t)] for t in pick("transform")]
    table = _replace(items, "status", pa.array(status, pa.string()))
    table = _replace(table, "error", pa.array(error, pa.string()))
    for col, arr in (
        ("bbox", pa.array(bbox, pa.list_(pa.float32(), 4))),
        ("det_score", pa.array(pick("det_score", math.nan), pa.float32())),
        ("n_faces", pa.array(pick("n_faces", -1), pa.int32())),
        ("landmarks", landmark_column(pick("landmarks"))),
        ("landmarks_crop", landmark_column(pick("landmarks_crop"))),
        ("transform", pa.array(transform, pa.list_(pa.float32(), 6))),
        ("crop_file", pa.array([crop_file] * n, pa.string())),
        ("crop_index", pa.array(crop_index, pa.int64())),
    ):
        table = _replace(table, col, arr)
    return table
