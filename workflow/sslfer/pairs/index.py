"""Build ``results/{corpus}/pairs.parquet``: per track, the usable frames and their TimeAug / HardNeg partners.

One row per manifest row (every track is accounted for). A frame is *usable* when it has an aligned crop
(frame status ``ok`` or ``multi_face``). Offsets are in seconds, so the same config means the same thing at
any frame rate; the defaults reproduce the reference's frame offsets at 25/6 fps exactly:

- TimeAug positives of frame *i*: usable frames *j* with ``positive_s[0] <= |t_j - t_i| <= positive_s[1]``
  (the reference's 2–6 frames = 0.48–1.44 s). Stored as positions in the track's usable-frame list
  (``pos_index``) with their signed offsets (``pos_offset_s``); the sampler weights them by ``distribution``.
- HardNeg partners of frame *i*: usable frames at least ``hard_negative_min_s`` away (the reference's
  12 frames = 2.88 s). As frames are sorted by time these are two runs, ``[0, neg_before_end)`` and
  ``[neg_after_start, n)``; a hard negative also needs its own positive (``has_pos``).

Track ``status``: ``ok`` (has an anchor with a positive and a hard negative that has a positive);
``no_hard_neg`` (TimeAug works, the track is too short for HardNeg); ``no_time_aug`` (no two usable frames
at a positive offset); ``no_frames`` (no usable frame, or the manifest could not decode it: its status is
in ``error``). The trainer decides per variant which tracks it can use; none is dropped here.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..layout import shard_of

EPS = 1e-6
USABLE = ("ok", "multi_face")
FRAME_COLUMNS = ["video_id", "identity", "frame_idx", "t_s", "status", "crop_index"]

log = logging.getLogger(__name__)


def track_partners(t: np.ndarray, positive_s: tuple[float, float], hard_negative_min_s: float) -> dict:
    """Partners of each frame of one track, given its usable frames' sorted times ``t``."""
    lo, hi = positive_s
    d = t[None, :] - t[:, None]
    pos = (np.abs(d) >= lo - EPS) & (np.abs(d) <= hi + EPS)
    pos_index = [np.flatnonzero(row).astype(np.int32) for row in pos]
    pos_offset = [d[i, j].astype(np.float32) for i, j in enumerate(pos_index)]
    has_pos = pos.any(1)
    before_end = np.searchsorted(t, t - hard_negative_min_s + EPS, side="right").astype(np.int32)
    after_start = np.searchsorted(t, t + hard_negative_min_s - EPS, side="left").astype(np.int32)
    cum = np.concatenate([[0], np.cumsum(has_pos)])          # usable-with-positive frames before each position
    neg_ok = (cum[before_end] > 0) | (cum[-1] - cum[after_start] > 0)
    return {"pos_index": pos_index, "pos_offset_s": pos_offset, "has_pos": has_pos,
            "neg_before_end": before_end, "neg_after_start": after_start, "anchor_hard_neg": has_pos & neg_ok}


def _track_status(n: int, partners: dict | None, duration: float, cfg: dict) -> tuple[str, str | None]:
    if n == 0:
        return "no_frames", "no usable frame (no face / landmarks in any sampled frame)"
    if not partners["has_pos"].any():
        return "no_time_aug", (f"no two usable frames {cfg['positive_s'][0]}-{cfg['positive_s'][1]} s apart "
                               f"({n} usable frames over {duration:.2f} s)")
    if not partners["anchor_hard_neg"].any():
        return "no_hard_neg", (f"too short for HardNeg: no usable frames >= {cfg['hard_negative_min_s']} s apart "
                               f"with positives ({n} usable frames over {duration:.2f} s)")
    return "ok", None


def build_pairs(manifest: str | Path, frame_files: list[str | Path], cfg: dict) -> pa.Table:
    """The pairs table for a corpus from its manifest and every shard's ``frames.parquet``."""
    frames = []
    for f in frame_files:
        tab = pq.read_table(f, columns=FRAME_COLUMNS)
        frames.append(tab.append_column("shard", pa.array(np.full(tab.num_rows, shard_of(f), np.int32))))
    df = pa.concat_tables(frames).to_pandas() if frames else None
    usable = df[df.status.isin(USABLE) & (df.crop_index >= 0)] if df is not None else None
    groups = dict(tuple(usable.groupby("video_id", sort=False))) if usable is not None else {}
    sampled = df.groupby("video_id").size().to_dict() if df is not None else {}
    man = pq.read_table(manifest, columns=["video_id", "identity", "shard", "status", "error"]).to_pylist()
    cols: dict[str, list] = {k: [] for k in (
        "video_id", "identity", "shard", "status", "error", "n_sampled", "n_usable", "duration_s", "frame_idx",
        "t_s", "crop_index", "pos_index", "pos_offset_s", "has_pos", "neg_before_end", "neg_after_start",
        "anchor_hard_neg")}
    for row in man:
        g = groups.get(row["video_id"])
        g = g.sort_values("frame_idx") if g is not None else None
        t = g.t_s.to_numpy(np.float64) if g is not None else np.zeros(0)
        partners = track_partners(t, tuple(cfg["positive_s"]), cfg["hard_negative_min_s"])
        duration = float(t[-1] - t[0]) if len(t) else 0.0
        status, err = _track_status(len(t), partners, duration, cfg)
        if row["status"] not in ("ok", "too_short") and not len(t):
            err = f"manifest status {row['status']}: {row['error']}"
        cols["video_id"].append(row["video_id"])
        cols["identity"].append(row["identity"])
        cols["shard"].append(row["shard"])
        cols["status"].append(status)
        cols["error"].append(None if err is None else f"{row['video_id']}: {err}")
        cols["n_sampled"].append(sampled.get(row["video_id"], 0))
        cols["n_usable"].append(len(t))
        cols["duration_s"].append(duration)
        cols["frame_idx"].append(g.frame_idx.to_numpy(np.int64) if g is not None else np.zeros(0, np.int64))
        cols["t_s"].append(t)
        cols["crop_index"].append(g.crop_index.to_numpy(np.int64) if g is not None else np.zeros(0, np.int64))
        for k in ("pos_index", "pos_offset_s", "has_pos", "neg_before_end", "neg_after_start", "anchor_hard_neg"):
            cols[k].append(partners[k])
    types = {"video_id": pa.string(), "identity": pa.string(), "shard": pa.int32(), "status": pa.string(),
             "error": pa.string(), "n_sampled": pa.int32(), "n_usable": pa.int32(), "duration_s": pa.float64(),
             "frame_idx": pa.list_(pa.int64()), "t_s": pa.list_(pa.float64()), "crop_index": pa.list_(pa.int64()),
             "pos_index": pa.list_(pa.list_(pa.int32())), "pos_offset_s": pa.list_(pa.list_(pa.float32())),
             "has_pos": pa.list_(pa.bool_()), "neg_before_end": pa.list_(pa.int32()),
             "neg_after_start": pa.list_(pa.int32()), "anchor_hard_neg": pa.list_(pa.bool_())}
    def arr(k: str) -> pa.Array:
        v = cols[k]
        if k == "pos_index" or k == "pos_offset_s":
            v = [[x.tolist() for x in track] for track in v]
        elif isinstance(types[k], pa.ListType):
            v = [x.tolist() for x in v]
        return pa.array(v, types[k])

    table = pa.table({k: arr(k) for k in cols})
    counts = Counter(cols["status"])
    log.info("pairs: %d tracks, %d usable frames; status %s", table.num_rows, sum(cols["n_usable"]),
             dict(sorted(counts.items())))
    for e in cols["error"]:
        if e:
            log.info("  %s", e)
    return table
