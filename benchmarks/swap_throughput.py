"""Benchmark: face swaps per second per core at crop size 128, ours against a reference-style swap.

Builds a small synthetic corpus (``--identities`` people, one 3 s video each), preprocesses it into aligned
128 px crops, then times on one core:

- ``ours``: :func:`sslfer.swap.faceswap.swap_face` (feathered mask, colour correction over the mask, clip);
- ``ours, no colour``: the same without colour correction;
- ``reference-style``: the released reference code's recipe (Procrustes
  without a reflection check, inverse-map warp, binary hull mask, whole-image blur ratio, ``+128`` where
  the denominator is ≤ 1, uint8 cast without clipping); the table also counts its wrapped pixels;
- ``donor choice`` and ``swap_shard`` end to end (read the corpus, choose donors, swap, write).

    python benchmarks/swap_throughput.py [--identities 4] [--seed 0] [--pairs 400]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from sslfer.parquet import landmarks_numpy  # noqa: E402
from sslfer.preprocess.manifest import build_manifest  # noqa: E402
from sslfer.preprocess.shard import ShardConfig, process_shard  # noqa: E402
from sslfer.swap.donors import DonorPool, choose_donors, read_frames  # noqa: E402
from sslfer.swap.faceswap import ALIGN_POINTS, OVERLAY_GROUPS, colour_kernel, swap_face  # noqa: E402
from sslfer.swap.shard import SwapConfig, swap_shard  # noqa: E402
from sslfer.synth.corpus import write_videos  # noqa: E402


def reference_style_swap(canvas: np.ndarray, canvas_lm: np.ndarray, feature: np.ndarray,
                         feature_lm: np.ndarray) -> tuple[np.ndarray, int]:
    """(uint8 result, number of pixels outside 0–255 before the unclipped cast) of the reference's recipe."""
    c, f = canvas_lm[ALIGN_POINTS].astype(np.float64), feature_lm[ALIGN_POINTS].astype(np.float64)
    mc, mf = c.mean(0), f.mean(0)
    sc, sf = (c - mc).std(), (f - mf).std()
    u, _, vt = np.linalg.svd(((c - mc) / sc).T @ ((f - mf) / sf))
    rot = (u @ vt).T
    m = np.hstack([sf / sc * rot, (mf - sf / sc * rot @ mc)[:, None]])     # canvas pixel → feature pixel
    size = canvas.shape[1::-1]

    def hull_mask(img_shape, lm):
        mask = np.zeros(img_shape[:2], np.float64)
        for group in OVERLAY_GROUPS:
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(lm[group]).astype(np.int32)), 1.0)
        return mask

    def warp(img):
        out = np.zeros(canvas.shape[:2] + img.shape[2:], img.dtype)
        cv2.warpAffine(img, m, size, dst=out, flags=cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_TRANSPARENT)
        return out

    mask = np.maximum(hull_mask(canvas.shape, canvas_lm), warp(hull_mask(feature.shape, feature_lm)))[..., None]
    warped = warp(feature)
    k = colour_kernel(canvas_lm)
    blur_c = cv2.GaussianBlur(canvas, (k, k), 0).astype(np.float64)
    blur_w = cv2.GaussianBlur(warped, (k, k), 0).astype(np.float64)
    blur_w += 128 * (blur_w <= 1.0)
    corrected = warped.astype(np.float64) * blur_c / blur_w
    out = canvas * (1.0 - mask) + corrected * mask
    wrapped = int(((out < 0) | (out > 255)).sum())
    return out.astype(np.uint8), wrapped


def build_crops(root: Path, identities: int, seed: int) -> Path:
    """Synthetic videos → one preprocessed shard; returns its frames.parquet."""
    cfg = {"identities": identities, "clips_per_identity": 1, "utterances_per_clip": 1, "duration_s": [3.0, 3.0],
           "fps": 25}
    write_videos(root / "synth", cfg, seed=seed, workers=min(4, os.cpu_count() or 1))
    manifest = build_manifest("video_tree", root / "synth" / "voxceleb" / "videos", None, shard_size=10**6,
                              min_duration_s=0.0)
    shard = root / "frames" / "shard=00000"
    process_shard(manifest, ShardConfig(), shard / "frames.parquet", shard / "crops.npy", {"rule": "benchmark"})
    return shard / "frames.parquet"


def rate(fn, items) -> float:
    t0 = time.perf_counter()
    for item in items:
        fn(*item)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=400, help="random other-identity pairs timed per variant")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        frames_path = build_crops(Path(tmp), args.identities, args.seed)
        t = pq.read_table(frames_path)
        ok = np.flatnonzero(t.column("crop_index").to_numpy() >= 0)
        lm = landmarks_numpy(t.column("landmarks_crop"))
        crops = np.load(frames_path.parent / "crops.npy")
        ident = np.asarray(t.column("identity").to_pylist())
        rng = np.random.default_rng(args.seed)
        pairs = []
        while len(pairs) < args.pairs:
            d, e = rng.choice(ok, 2)
            if ident[d] != ident[e]:
                pairs.append((crops[t.column("crop_index")[d].as_py()], lm[d], crops[t.column("crop_index")[e].as_py()],
                              lm[e]))
        print(f"{len(ok)} crops of {args.identities} identities, 128 px; {len(pairs)} random pairs; one core\n")
        print(f"{'variant':<34}{'swaps/s':>10}{'ms/swap':>10}")
        wraps = []
        for name, fn in (("ours (feather 3 px, colour, clip)", lambda *p: swap_face(*p, feather_px=3.0)),
                         ("ours, no colour correction", lambda *p: swap_face(*p, feather_px=3.0, colour_correct=False)),
                         ("ours, binary mask (feather 0)", lambda *p: swap_face(*p, feather_px=0.0)),
                         ("reference-style (binary, no clip)", lambda *p: wraps.append(reference_style_swap(*p)[1]))):
            r = rate(fn, pairs)
            print(f"{name:<34}{r:>10.1f}{1000 / r:>10.2f}")
        wraps = np.array(wraps)
        print(f"\nreference-style: {np.mean(wraps > 0):.1%} of swaps have wrapped pixels "
              f"(mean {wraps.mean():.0f} channel values per swap); ours clips them")

        pool = DonorPool.from_frames(read_frames([frames_path]))
        queries = [(t.column("video_id")[i].as_py(), ident[i], t.column("frame_idx")[i].as_py(), lm[i]) for i in ok]
        r = rate(lambda v, i, f, p: choose_donors(pool, v, i, f, p, 2, 16, args.seed), queries)
        print(f"donor choice (pool {len(pool)} frames): {r:.0f} frames/s")
        t0 = time.perf_counter()
        counts = swap_shard([frames_path], 0, Path(tmp) / "swaps.parquet", Path(tmp) / "swaps.npy", SwapConfig(), args.seed,
                            {"rule": "benchmark"})
        dt = time.perf_counter() - t0
        print(f"swap_shard end to end: {sum(counts.values())} swaps in {dt:.2f} s = "
              f"{sum(counts.values()) / dt:.1f} swaps/s ({dict(counts)})")


if __name__ == "__main__":
    main()
