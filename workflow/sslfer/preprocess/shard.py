"""Process one shard of the manifest: sampled frames → detection → 68 landmarks → aligned crops.

Writes ``frames.parquet`` (one row per sampled frame, every frame accounted for with a ``status``) and
``crops.npy`` (uint8, ``(n_rows, crop_size, crop_size, 3)`` RGB, memory-mappable; row ``crop_index``
holds a frame's crop, -1 where there is none). Memory stays bounded whatever the video length: frames
are decoded one at a time and crops go straight to a memory-mapped file.

Frame ``status`` values: ``ok``; ``multi_face`` (several faces, the track's face kept and cropped);
``no_face``; ``landmark_error`` (degenerate landmarks, no crop); ``decode_error``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from ..npy import atomic_crops
from ..parquet import LANDMARKS_TYPE, landmarks_array, write_parquet
from .align import align_face, is_degenerate
from .decode import iter_frames, sample_indices
from .detect import FaceDetector, pick_track_face
from .landmarks import Landmarker

log = logging.getLogger(__name__)

#: Manifest statuses whose sources are decoded (the others have nothing to decode).
DECODABLE = ("ok", "too_short")


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
    fan_weights: str | None = None
    landmarks_model_dir: str | None = None


def _rows_expected(manifest: pa.Table, sample_fps: float) -> int:
    n = 0
    for nf, fps, st in zip(manifest["n_frames"].to_pylist(), manifest["fps"].to_pylist(), manifest["status"].to_pylist()):
        if st in DECODABLE:
            n += len(sample_indices(nf, fps, sample_fps))
    return n


def process_shard(manifest: pa.Table, cfg: ShardConfig, frames_path: str | Path, crops_path: str | Path,
                  provenance: dict) -> Counter:
    """Process the manifest rows of one shard; write both outputs atomically; return status counts."""
    frames_path, crops_path = Path(frames_path), Path(crops_path)
    crops_path.parent.mkdir(parents=True, exist_ok=True)
    detector = FaceDetector(cfg.detector, cfg.upsample, cfg.max_side, cfg.detector_model_dir, cfg.track_face_px)
    landmarker = Landmarker(cfg.landmarks, cfg.fan_weights, model_dir=cfg.landmarks_model_dir)
    total = _rows_expected(manifest, cfg.sample_fps)
    with atomic_crops(crops_path, total, cfg.crop_size) as crops:   # no temporary file survives a crash
        cols: dict[str, list] = {k: [] for k in ("video_id", "identity", "frame_idx", "t_s", "status", "error",
                                                 "det_score", "bbox", "n_faces", "crop_index", "transform")}
        lms, lms_crop = [], []
        nan68 = np.full((68, 2), np.nan, np.float32)
        counts: Counter = Counter()
        bar = tqdm(total=total, desc="shard frames", mininterval=5.0, unit="frame")
        for row in manifest.to_pylist():
            if row["status"] not in DECODABLE:
                continue
            previous = None
            for idx, rgb, err in iter_frames(row["source_path"], row["kind"], row["n_frames"], row["fps"],
                                             cfg.sample_fps, cfg.decoder):
                bar.update()
                status, score, box, n_faces, crop_index, m = "decode_error", np.nan, None, 0, -1, None
                lm, lm_c = nan68, nan68
                if rgb is not None:
                    dets = detector(rgb, None if previous is None else float(previous[2] - previous[0]))
                    n_faces = len(dets)
                    if n_faces == 0:
                        status, err = "no_face", f"{row['video_id']} frame {idx}: no face found"
                    else:
                        k = pick_track_face(dets, previous)
                        box, score = dets.boxes[k], float(dets.scores[k])
                        previous = box
                        lm = landmarker(rgb, box)
                        if is_degenerate(lm, box):
                            status, err = "landmark_error", f"{row['video_id']} frame {idx}: degenerate landmarks"
                        else:
                            crop, m, lm_c = align_face(rgb, lm, cfg.crop_size)
                            crop_index = len(cols["video_id"])
                            crops[crop_index] = crop
                            status = "ok" if n_faces == 1 else "multi_face"
                            if n_faces > 1:
                                err = f"{row['video_id']} frame {idx}: {n_faces} faces, kept the track's face"
                counts[status] += 1
                cols["video_id"].append(row["video_id"])
                cols["identity"].append(row["identity"])
                cols["frame_idx"].append(idx)
                cols["t_s"].append(idx / row["fps"])
                cols["status"].append(status)
                cols["error"].append(err)
                cols["det_score"].append(score)
                cols["bbox"].append(None if box is None else [float(v) for v in box])
                cols["n_faces"].append(n_faces)
                cols["crop_index"].append(crop_index)
                cols["transform"].append(None if m is None else [float(v) for v in m.ravel()])
                lms.append(lm)
                lms_crop.append(lm_c)
        bar.close()
        n = len(cols["video_id"])
        lm_arr = landmarks_array(np.stack(lms) if lms else np.zeros((0, 68, 2), np.float32))
        lmc_arr = landmarks_array(np.stack(lms_crop) if lms_crop else np.zeros((0, 68, 2), np.float32))
        valid = pa.array([s in ("ok", "multi_face", "landmark_error") for s in cols["status"]])
        table = pa.table({
            "video_id": pa.array(cols["video_id"], pa.string()),
            "identity": pa.array(cols["identity"], pa.string()),
            "frame_idx": pa.array(cols["frame_idx"], pa.int64()),
            "t_s": pa.array(cols["t_s"], pa.float64()),
            "status": pa.array(cols["status"], pa.string()),
            "error": pa.array(cols["error"], pa.string()),
            "det_score": pa.array(cols["det_score"], pa.float32()),
            "bbox": pa.array(cols["bbox"], pa.list_(pa.float32(), 4)),
            "n_faces": pa.array(cols["n_faces"], pa.int32()),
            "landmarks": pc.if_else(valid, lm_arr, pa.nulls(n, LANDMARKS_TYPE)) if n else lm_arr,
            "landmarks_crop": pc.if_else(pa.array([c >= 0 for c in cols["crop_index"]]), lmc_arr,
                                                 pa.nulls(n, LANDMARKS_TYPE)) if n else lmc_arr,
            "transform": pa.array(cols["transform"], pa.list_(pa.float32(), 6)),
            "crop_file": pa.array([crops_path.name] * n, pa.string()),
            "crop_index": pa.array(cols["crop_index"], pa.int64()),
        })
    write_parquet(table, frames_path, dict(provenance, status_counts=dict(sorted(counts.items()))))
    log.info("shard: %d frames: %s", n, dict(sorted(counts.items())))
    return counts
