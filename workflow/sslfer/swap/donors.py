"""Donor choice for FaceSwap: for each expression frame, ``k`` distinct frames of OTHER identities with a
similar head pose, drawn at random (seeded) among the ``candidates`` nearest by pose.

The pose feature comes from the aligned-crop landmarks. Eyes and mouth are fixed by the alignment, so
what is left of head pose shows in the face contour and the nose: yaw as the left/right asymmetry of the
jaw about the nose bridge and as the nose tip's offset from the eye midpoint, roll as the vertical
asymmetry of the jaw, all in inter-ocular units. Symmetric differences (face width, jaw shape) cancel, so
the feature reflects pose rather than identity. Pitch is not recoverable this way and is left out.

Determinism: the pool is the whole corpus's ``ok`` frames in (video_id, frame_idx) order, neighbours are
exact (k-d tree), ties break by pool position, and each frame's draw is seeded by (seed, video_id,
frame_idx): a frame's donors do not depend on the shard it is in or the order frames are processed.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.spatial import cKDTree

from ..layout import shard_of
from ..parquet import landmarks_numpy

FRAME_COLUMNS = ["video_id", "identity", "frame_idx", "status", "crop_file", "crop_index", "landmarks_crop"]
_JAW_LEFT, _JAW_RIGHT = np.arange(0, 8), np.arange(16, 8, -1)   # mirror pairs (j, 16 - j)


def pose_feature(landmarks: np.ndarray) -> np.ndarray:
    """``(n, 3)`` float64 pose feature (jaw yaw asymmetry, nose yaw offset, jaw roll asymmetry) from
    ``(n, 68, 2)`` aligned-crop landmarks, in inter-ocular units."""
    lm = np.asarray(landmarks, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):       # collapsed points: a non-finite feature
        return _pose(lm)


def _pose(lm: np.ndarray) -> np.ndarray:
    left_eye, right_eye = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    iod = np.linalg.norm(right_eye - left_eye, axis=1)
    mid = lm[:, 27:31, 0].mean(1, keepdims=True)
    left, right = lm[:, _JAW_LEFT], lm[:, _JAW_RIGHT]
    yaw_jaw = ((right[..., 0] - mid) - (mid - left[..., 0])).mean(1) / iod
    yaw_nose = (lm[:, 30, 0] - (left_eye[:, 0] + right_eye[:, 0]) / 2) / iod
    roll_jaw = (right[..., 1] - left[..., 1]).mean(1) / iod
    return np.stack([yaw_jaw, yaw_nose, roll_jaw], axis=1)


def read_frames(frames_parquets: list[str | Path]) -> pa.Table:
    """The corpus's frame tables (only :data:`FRAME_COLUMNS`) plus ``shard`` and ``crops_path``, sorted by
    (video_id, frame_idx)."""
    tables = []
    for path in frames_parquets:
        t = pq.read_table(path, columns=FRAME_COLUMNS)
        crops = pc.binary_join_element_wise(f"{Path(path).parent}{os.sep}", t.column("crop_file"), "")
        t = t.append_column("shard", pa.array(np.full(t.num_rows, shard_of(path), np.int64)))
        tables.append(t.append_column("crops_path", crops).drop(["crop_file"]))
    table = pa.concat_tables(tables)
    return table.sort_by([("video_id", "ascending"), ("frame_idx", "ascending")])


@dataclass
class DonorPool:
    """Candidate donors: the corpus's frames with status ``ok`` (one face, aligned crop), in pool order.

    ``frames`` keeps the frame columns (not the landmarks), ``landmarks`` their ``(n, 68, 2)`` crop points,
    ``identity_code`` an integer per identity (``codes`` maps names to it), ``tree`` a k-d tree of ``pose``.
    """

    frames: pa.Table
    landmarks: np.ndarray
    identity_code: np.ndarray
    codes: dict[str, int]
    pose: np.ndarray
    tree: cKDTree

    @classmethod
    def from_frames(cls, frames: pa.Table) -> DonorPool:
        """The pool of a table from :func:`read_frames`."""
        ok = pc.and_(pc.equal(frames.column("status"), "ok"), pc.greater_equal(frames.column("crop_index"), 0))
        t = frames.filter(ok)
        lm = landmarks_numpy(t.column("landmarks_crop"))
        pose = pose_feature(lm) if len(t) else np.zeros((0, 3))
        keep = np.isfinite(pose).all(1)
        t, lm, pose = t.filter(pa.array(keep)).drop(["landmarks_crop"]), lm[keep], pose[keep]
        ids = t.column("identity").combine_chunks().dictionary_encode() if len(t) else pa.array([]).dictionary_encode()
        codes = {name: i for i, name in enumerate(ids.dictionary.to_pylist())}
        return cls(t, lm, ids.indices.to_numpy(zero_copy_only=False).astype(np.int64), codes, pose, cKDTree(pose))

    def __len__(self) -> int:
        return len(self.identity_code)

    def nearest_other(self, pose: np.ndarray, identity: str, n: int) -> np.ndarray:
        """Pool indices of the ``n`` frames of identities other than ``identity`` nearest to ``pose``,
        nearest first (fewer if the pool has fewer)."""
        k = min(len(self), max(2 * n, 32))
        while k:
            dist, idx = self.tree.query(pose, k=k)
            dist, idx = np.atleast_1d(dist), np.atleast_1d(idx)
            order = np.lexsort((idx, dist))
            idx = idx[order][self.identity_code[idx[order]] != self.codes.get(identity, -1)]
            if len(idx) >= n or k == len(self):
                return idx[:n]
            k = min(len(self), 4 * k)
        return np.zeros(0, np.int64)


def frame_rng(seed: int, video_id: str, frame_idx: int) -> np.random.Generator:
    """The random generator of one frame's donor draw."""
    return np.random.default_rng([seed, zlib.crc32(video_id.encode()), int(frame_idx)])


def choose_donors(pool: DonorPool, video_id: str, identity: str, frame_idx: int, landmarks: np.ndarray,
                  k: int, candidates: int, seed: int) -> np.ndarray:
    """Pool indices of up to ``k`` distinct donors of one expression frame (``landmarks``: its 68 crop points),
    drawn among the ``candidates`` nearest other-identity frames by pose."""
    pose = pose_feature(np.asarray(landmarks)[None])[0]
    if not np.isfinite(pose).all():   # no pose to match (the swap itself will flag the landmarks): any donors
        pose = np.zeros(3)
    near = pool.nearest_other(pose, identity, max(candidates, k))
    if len(near) == 0:
        return near
    return near[frame_rng(seed, video_id, frame_idx).choice(len(near), min(k, len(near)), replace=False)]
