"""Describe one preprocessed shard: one MaskFN descriptor row per frame row of ``frames.parquet``.

Output columns: ``video_id, identity, frame_idx, t_s, crop_index, status, error, eye, mouth, descriptor``
(``eye``/``mouth`` the backend's region vectors, ``descriptor`` their L2-normalised concatenation; all
``fixed_size_list<float32>``). Row ``status``:

- ``ok``: descriptor computed;
- ``no_landmarks``: the frame has no aligned crop or crop landmarks (no face, decode or landmark error).
  The reference gave such frames one shared black-patch descriptor, so they became each other's false
  negatives; here their descriptor is null and FN mining must skip them;
- ``short_track`` (track-normalised backends only): fewer than ``min_track_frames`` frames of the track
  have landmarks, too few for a reliable per-track reference; descriptor null as well.

Frames are processed in chunks of whole tracks, so memory stays bounded and the output does not depend
on the chunking.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..files import remove_stale_temps
from ..jpeg_store import open_images
from ..parquet import landmarks_numpy, write_parquet
from .backends import DescriptorBackend, DescriptorConfig, make_backend

log = logging.getLogger(__name__)

FRAME_COLUMNS = ["video_id", "identity", "frame_idx", "t_s", "crop_index", "status", "landmarks_crop"]
#: Frames per backend call (whole tracks; a longer track is one call on its own).
CHUNK_FRAMES = 2048


def _vectors(values: np.ndarray, valid: np.ndarray) -> pa.FixedSizeListArray:
    """``fixed_size_list<float32, d>`` column from ``(n, d)`` values, null where not ``valid``."""
    flat = pa.array(np.ascontiguousarray(values, np.float32).reshape(-1), pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1], mask=pa.array(~valid))


def _chunks(rows: np.ndarray, tracks: np.ndarray, size: int) -> list[np.ndarray]:
    """``rows`` split into runs of whole tracks (in order of first appearance) of about ``size`` rows."""
    _, first, inverse = np.unique(tracks, return_index=True, return_inverse=True)
    order = np.argsort(first[inverse] * (len(rows) + 1) + np.arange(len(rows)), kind="stable")
    rows, track_of = rows[order], inverse[order]
    out, start = [], 0
    boundaries = np.flatnonzero(np.diff(track_of)) + 1
    for end in list(boundaries) + [len(rows)]:
        if end - start >= size or end == len(rows):
            out.append(rows[start:end])
            start = end
    return [c for c in out if len(c)]


def describe_frames(backend: DescriptorBackend, crops: np.ndarray, crop_index: np.ndarray, landmarks: np.ndarray,
                    tracks: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(eye, mouth)`` region vectors of the frames ``rows`` (which have crops and landmarks)."""
    eye = np.zeros((len(tracks), backend.dims[0]), np.float32)
    mouth = np.zeros((len(tracks), backend.dims[1]), np.float32)
    bar = tqdm(total=len(rows), desc=f"descriptors ({backend.name})", mininterval=5.0, unit="frame")
    for chunk in _chunks(rows, tracks[rows], CHUNK_FRAMES):
        eye[chunk], mouth[chunk] = backend(crops[crop_index[chunk]], landmarks[chunk], tracks[chunk])
        bar.update(len(chunk))
    bar.close()
    return eye, mouth


def describe_shard(frames_parquet: str | Path, crops_npy: str | Path, out_parquet: str | Path, cfg: DescriptorConfig,
                   provenance: dict, device: str = "cpu") -> Counter:
    """Write the descriptors of one shard (``device``: the config key, for ``resnet18_imagenet``); return status
    counts."""
    remove_stale_temps(Path(out_parquet).parent)      # temporary files of killed jobs
    backend = make_backend(cfg, device)
    min_track = cfg.min_track_frames
    frames = pq.read_table(frames_parquet, columns=FRAME_COLUMNS)
    crops = open_images(crops_npy)
    n = frames.num_rows
    tracks = np.asarray(frames["video_id"].to_pylist(), dtype=object)
    frame_idx = frames["frame_idx"].to_numpy()
    frame_status = frames["status"].to_pylist()
    crop_index = frames["crop_index"].to_numpy()
    landmarks = landmarks_numpy(frames["landmarks_crop"])
    has_lm = (crop_index >= 0) & np.isfinite(landmarks).all(axis=(1, 2))

    status = np.where(has_lm, "ok", "no_landmarks").astype(object)
    errors: list[str | None] = [None] * n
    for i in np.flatnonzero(~has_lm):
        errors[i] = f"{tracks[i]} frame {frame_idx[i]}: no aligned crop/landmarks (frame status {frame_status[i]})"
    if backend.uses_tracks and n:
        names, inverse = np.unique(tracks, return_inverse=True)
        per_track = np.bincount(inverse, weights=has_lm, minlength=len(names))
        short = has_lm & (per_track[inverse] < min_track)
        for i in np.flatnonzero(short):
            errors[i] = (f"{tracks[i]} frame {frame_idx[i]}: only {int(per_track[inverse[i]])} frames of the track "
                         f"have landmarks (< descriptors.min_track_frames = {min_track})")
        status[short] = "short_track"
    valid = status == "ok"

    eye, mouth = describe_frames(backend, crops, crop_index, landmarks, tracks, np.flatnonzero(valid))
    desc = np.concatenate([eye, mouth], axis=1)
    desc /= np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-12)
    table = pa.table({
        "video_id": frames["video_id"],
        "identity": frames["identity"],
        "frame_idx": frames["frame_idx"],
        "t_s": frames["t_s"],
        "crop_index": frames["crop_index"],
        "status": pa.array(status.tolist(), pa.string()),
        "error": pa.array(errors, pa.string()),
        "eye": _vectors(eye, valid),
        "mouth": _vectors(mouth, valid),
        "descriptor": _vectors(desc, valid),
    })
    counts = Counter(status.tolist())
    write_parquet(table, out_parquet, dict(provenance, **backend.info, min_track_frames=min_track,
                                           status_counts=dict(sorted(counts.items()))))
    log.info("descriptors (%s): %d frames: %s", backend.name, n, dict(sorted(counts.items())))
    return counts
