"""Process one shard of the manifest: sampled frames → detection → 68 landmarks → aligned crops.

Writes ``frames.parquet`` (one row per sampled frame, every frame accounted for with a ``status``) and
``crops.npy`` (uint8, ``(n_rows, crop_size, crop_size, 3)`` RGB, memory-mappable; or, with ``storage``
``jpeg``, the same crops JPEG-encoded in one file, see :mod:`sslfer.jpeg_store`; row ``crop_index`` holds
a frame's crop, -1 where there is none). Memory stays bounded whatever the video length: frames are
decoded one at a time and crops go straight to a memory-mapped file (or are encoded at once, a few KB each).

Frame ``status`` values: ``ok``; ``multi_face`` (several faces, the track's face kept and cropped);
``no_face``; ``landmark_error`` (degenerate landmarks, no crop); ``decode_error``.

Videos are isolated from each other (:mod:`.isolate`): an exception anywhere in one video's decoding,
detection, landmarks or alignment gives every sampled frame of that video the status ``video_error``
(the error names the video, its file, the stage, the exception type and message), and a video with no
result within ``video_timeout_s`` seconds (run in a watchdog child process, which is killed) the status
``timeout``; such a video keeps no crops and the shard goes on. A video's rows and crop slots are fixed
by the manifest (``crop_index`` = row number), so the other videos' rows and crops are what a clean run
gives. SIGTERM removes the temporary files and exits non-zero; a full disk is an error naming the bytes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from ..files import remove_stale_temps
from ..jpeg_store import STORAGES, JpegSlots, image_slots
from ..npy import DiskSpaceError, free_bytes, is_disk_full
from ..parquet import LANDMARKS_TYPE, landmarks_array, write_parquet
from ..signals import sigterm_exits
from .align import align_face, is_degenerate
from .decode import DECODERS, iter_frames, sample_indices
from .detect import DETECTORS, FaceDetector, pick_track_face
from .isolate import InProcess, ItemFailed, Watchdog, WorkError, describe
from .landmarks import LANDMARKERS, Landmarker

log = logging.getLogger(__name__)

#: Manifest statuses whose sources are decoded (the others have nothing to decode).
DECODABLE = ("ok", "too_short")
#: Frame statuses of a video that failed as a whole (no crops kept).
VIDEO_FAILED = ("video_error", "timeout")
NAN68 = np.full((68, 2), np.nan, np.float32)


@dataclass
class ShardConfig:
    """The ``preprocess`` settings that shape a shard."""

    sample_fps: float = 25.0 / 6.0
    decoder: str = "decord"
    detector: str = "dlib_hog"
    upsample: int = 1
    max_side: int = 640
    landmarks: str = "dlib68"
    crop_size: int = 128
    detector_model_dir: str | None = None
    track_face_px: int = 0
    min_face: float = 0.25
    fan_weights: str | None = None
    landmarks_model_dir: str | None = None
    device: str = "cpu"              # config key `device`: where fan / insightface run (sslfer.device)
    video_timeout_s: float = 600.0   # per video, in a watchdog child process; 0 = in this process, no limit
    storage: str = "raw"             # crops.npy: raw uint8 arrays, or jpeg (see sslfer.jpeg_store)
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        for key, value, known in (("detect.backend", self.detector, DETECTORS),
                                  ("landmarks.backend", self.landmarks, LANDMARKERS), ("decoder", self.decoder, DECODERS),
                                  ("storage", self.storage, STORAGES)):
            if value not in known:
                raise ValueError(f"config preprocess.{key}: unknown {key.split('.')[-1]} {value!r} (one of {', '.join(known)})")
        if (self.sample_fps <= 0 or self.crop_size <= 0 or self.video_timeout_s < 0 or not 0 <= self.min_face <= 1
                or not 1 <= self.jpeg_quality <= 100):
            raise ValueError(f"preprocess settings out of range: sample_fps {self.sample_fps}, crop_size "
                             f"{self.crop_size}, video_timeout_s {self.video_timeout_s}, detect.min_face {self.min_face}, "
                             f"jpeg_quality {self.jpeg_quality}")

    @classmethod
    def from_config(cls, pre: dict, device: str = "cpu") -> ShardConfig:
        """From the ``preprocess`` config section (defaults filled in by the schema) and the top-level ``device``.
        A still-image caller passes only ``detect``, ``landmarks`` and ``crop_size``: the video settings
        (``sample_fps``, ``decoder``, ``video_timeout_s``, ``storage``, ``jpeg_quality``) then keep the values
        above, unused."""
        detect, landmarks = pre["detect"], pre["landmarks"]
        video = {k: pre[k] for k in ("sample_fps", "decoder", "video_timeout_s", "storage", "jpeg_quality") if k in pre}
        return cls(detector=detect["backend"], upsample=detect["upsample"], max_side=detect["max_side"],
                   detector_model_dir=detect.get("model_dir"), track_face_px=detect["track_face_px"],
                   min_face=detect["min_face"], landmarks=landmarks["backend"], fan_weights=landmarks.get("fan_weights"),
                   landmarks_model_dir=landmarks.get("model_dir"), crop_size=pre["crop_size"], device=str(device),
                   **video)


class Frame(NamedTuple):
    """One sampled frame's result (``crop`` None where there is none)."""

    idx: int
    status: str
    error: str | None
    score: float
    box: np.ndarray | None
    n_faces: int
    landmarks: np.ndarray
    landmarks_crop: np.ndarray
    transform: np.ndarray | None
    crop: np.ndarray | None


def _n_sampled(row: dict, sample_fps: float) -> int:
    return len(sample_indices(row["n_frames"], row["fps"], sample_fps)) if row["status"] in DECODABLE else 0


def _rows_expected(manifest: pa.Table, sample_fps: float) -> int:
    return sum(_n_sampled(row, sample_fps) for row in manifest.to_pylist())


def video_frames(row: dict, cfg: ShardConfig, detector: FaceDetector, landmarker: Landmarker) -> Iterator[Frame]:
    """Every sampled frame of one manifest row; an exception becomes :class:`WorkError` naming the stage."""
    stage, idx = "decode", None
    try:
        previous = None
        for idx, rgb, err in iter_frames(row["source_path"], row["kind"], row["n_frames"], row["fps"],
                                         cfg.sample_fps, cfg.decoder):
            status, score, box, n_faces, crop, m = "decode_error", np.nan, None, 0, None, None
            lm, lm_c = NAN68, NAN68
            if rgb is not None:
                stage = "detect"
                dets = detector(rgb, None if previous is None else float(previous[2] - previous[0]))
                n_faces = len(dets)
                if n_faces == 0:
                    status, err = "no_face", f"{row['video_id']} frame {idx}: no face found"
                else:
                    k = pick_track_face(dets, previous)
                    box, score = dets.boxes[k], float(dets.scores[k])
                    previous = box
                    stage = "landmarks"
                    lm = landmarker(rgb, box)
                    if is_degenerate(lm, box):
                        status, err = "landmark_error", f"{row['video_id']} frame {idx}: degenerate landmarks"
                    else:
                        stage = "align"
                        crop, m, lm_c = align_face(rgb, lm, cfg.crop_size)
                        status = "ok" if n_faces == 1 else "multi_face"
                        if n_faces > 1:
                            err = f"{row['video_id']} frame {idx}: {n_faces} faces, kept the track's face"
            yield Frame(idx, status, err, score, box, n_faces, lm, lm_c, m, crop)
            stage = "decode"
    except Exception as exc:  # noqa: BLE001 - becomes the video's rows (isolate.ItemFailed)
        where = "opening the video" if idx is None else f"frame {idx}"
        raise WorkError(f"{stage} failed at {where}: {describe(exc)}") from exc


def _load_models(cfg: ShardConfig):
    """The per-video work function with the shard's detector and landmarker loaded (in the worker)."""
    detector = FaceDetector(cfg.detector, cfg.upsample, cfg.max_side, cfg.detector_model_dir, cfg.track_face_px,
                            device=cfg.device, min_face=cfg.min_face)
    landmarker = Landmarker(cfg.landmarks, cfg.fan_weights, cfg.device, model_dir=cfg.landmarks_model_dir)
    return partial(video_frames, cfg=cfg, detector=detector, landmarker=landmarker)


def _failed_frames(row: dict, cfg: ShardConfig, status: str, error: str) -> list[Frame]:
    return [Frame(int(i), status, error, np.nan, None, 0, NAN68, NAN68, None, None)
            for i in sample_indices(row["n_frames"], row["fps"], cfg.sample_fps)]


def _run_video(runner, row: dict, cfg: ShardConfig, offset: int, n: int, crops: np.memmap | JpegSlots,
               bar: tqdm) -> tuple[list[Frame], list[int]]:
    """One video's frames (without their crops) and crop indices, its crops written from ``offset`` on."""
    frames: list[Frame] = []
    index: list[int] = []
    wrote = False
    try:
        for f in runner.results(row):
            if len(frames) == n:
                raise ItemFailed("video_error", f"more frames than the {n} sampled", n)
            k = -1
            if f.crop is not None:
                k = offset + len(frames)
                crops[k] = f.crop
                wrote = True
            frames.append(f._replace(crop=None))
            index.append(k)
            bar.update()
        if len(frames) != n:
            raise ItemFailed("video_error", f"{len(frames)} frames of the {n} sampled", len(frames))
    except ItemFailed as exc:
        if wrote:
            crops[offset:offset + n] = 0
        bar.update(n - len(frames))
        error = f"{row['video_id']} ({row['source_path']}): {exc.message}"
        log.warning("video %s failed after %d of %d frames: %s (its %d frames recorded as %s)", row["video_id"],
                    exc.done, n, error, n, exc.status)
        frames = _failed_frames(row, cfg, exc.status, error)
        index = [-1] * n
    return frames, index


def _table(frames: list[tuple[dict, Frame, int]], crop_file: str) -> pa.Table:
    n = len(frames)
    lm_arr = landmarks_array(np.stack([f.landmarks for _, f, _ in frames]) if n else np.zeros((0, 68, 2), np.float32))
    lmc_arr = landmarks_array(np.stack([f.landmarks_crop for _, f, _ in frames]) if n
                              else np.zeros((0, 68, 2), np.float32))
    valid = pa.array([f.status in ("ok", "multi_face", "landmark_error") for _, f, _ in frames], pa.bool_())
    has_crop = pa.array([k >= 0 for _, _, k in frames], pa.bool_())
    return pa.table({
        "video_id": pa.array([r["video_id"] for r, _, _ in frames], pa.string()),
        "identity": pa.array([r["identity"] for r, _, _ in frames], pa.string()),
        "frame_idx": pa.array([f.idx for _, f, _ in frames], pa.int64()),
        "t_s": pa.array([f.idx / r["fps"] for r, f, _ in frames], pa.float64()),
        "status": pa.array([f.status for _, f, _ in frames], pa.string()),
        "error": pa.array([f.error for _, f, _ in frames], pa.string()),
        "det_score": pa.array([f.score for _, f, _ in frames], pa.float32()),
        "bbox": pa.array([None if f.box is None else [float(v) for v in f.box] for _, f, _ in frames],
                         pa.list_(pa.float32(), 4)),
        "n_faces": pa.array([f.n_faces for _, f, _ in frames], pa.int32()),
        "landmarks": pc.if_else(valid, lm_arr, pa.nulls(n, LANDMARKS_TYPE)) if n else lm_arr,
        "landmarks_crop": pc.if_else(has_crop, lmc_arr, pa.nulls(n, LANDMARKS_TYPE)) if n else lmc_arr,
        "transform": pa.array([None if f.transform is None else [float(v) for v in f.transform.ravel()]
                               for _, f, _ in frames], pa.list_(pa.float32(), 6)),
        "crop_file": pa.array([crop_file] * n, pa.string()),
        "crop_index": pa.array([k for _, _, k in frames], pa.int64()),
    })


def process_shard(manifest: pa.Table, cfg: ShardConfig, frames_path: str | Path, crops_path: str | Path,
                  provenance: dict) -> Counter:
    """Process the manifest rows of one shard; write both outputs atomically; return status counts."""
    frames_path, crops_path = Path(frames_path), Path(crops_path)
    with sigterm_exits():
        for folder in sorted({frames_path.parent, crops_path.parent}):
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(folder)
        rows = [r for r in manifest.to_pylist() if r["status"] in DECODABLE]
        sizes = [_n_sampled(r, cfg.sample_fps) for r in rows]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        total = offsets[-1]
        setup = partial(_load_models, cfg)
        with image_slots(crops_path, total, cfg.crop_size, cfg.storage, cfg.jpeg_quality) as crops:  # all or nothing
            runner = Watchdog(setup, cfg.video_timeout_s) if cfg.video_timeout_s > 0 else InProcess(setup)
            bar = tqdm(total=total, desc="shard frames", mininterval=5.0, unit="frame")
            out: list[tuple[dict, Frame, int]] = []
            with runner:
                for row, offset, n in zip(rows, offsets, sizes):
                    frames, index = _run_video(runner, row, cfg, offset, n, crops, bar)
                    out.extend((row, f, k) for f, k in zip(frames, index))
            bar.close()
            table = _table(out, crops_path.name)
        counts = Counter(f.status for _, f, _ in out)
        try:
            write_parquet(table, frames_path, dict(provenance, status_counts=dict(sorted(counts.items()))))
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskSpaceError(frames_path, None, free_bytes(frames_path.parent),
                                     f" (writing it failed: {describe(exc)})") from exc
            raise
    n_failed = sum(counts[s] for s in VIDEO_FAILED)
    log.info("shard: %d frames: %s%s", len(out), dict(sorted(counts.items())),
             f"; {n_failed} frames of failed videos (see the warnings above)" if n_failed else "")
    return counts
