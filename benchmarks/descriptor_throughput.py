"""Benchmark: MaskFN descriptors per second per core, and how well each finds same-expression frames.

Renders a small synthetic corpus (``--identities`` identities × ``--clips`` clips of 4–5 s), preprocesses it
into one shard, then for each descriptor backend times ``describe_shard`` on one core and measures the
nearest-neighbour expression agreement: for each frame, is its cosine nearest neighbour among frames of
*other* identities showing the same ground-truth expression? Baselines (raw pixels) and the steps of the
``geometry_hog`` design are measured the same way (small corpora give noisy figures: ±0.05 between seeds). ``resnet18_imagenet`` uses the cached torchvision
ImageNet weights if present, else a random initialisation (said in the table). Run with the project's
environment:

    python benchmarks/descriptor_throughput.py [--identities 8] [--seed 0]
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

from sslfer.descriptors.backends import (BLOCK_SCALE, BROWS_EYES, GEOMETRY_WEIGHT, MOUTH_POINTS,  # noqa: E402
                                         DescriptorConfig, GeometryHog, default_resnet18_weights, region_shape,
                                         track_centred)
from sslfer.descriptors.patches import extract_patches  # noqa: E402
from sslfer.descriptors.quality import chance_agreement, nn_agreement, with_truth  # noqa: E402
from sslfer.descriptors.shard import describe_shard  # noqa: E402
from sslfer.parquet import landmarks_numpy  # noqa: E402


def build_shard(root: Path, identities: int, clips: int, seed: int, workers: int) -> None:
    """Synthetic videos → manifest → one preprocessed shard (frames.parquet, crops.npy) under ``root``."""
    from sslfer.preprocess.manifest import build_manifest
    from sslfer.preprocess.shard import ShardConfig, process_shard
    from sslfer.synth import corpus

    cfg = {"identities": identities, "clips_per_identity": clips, "utterances_per_clip": 1,
           "duration_s": [4.0, 5.0], "fps": 25}
    corpus.write_videos(root / "synth", cfg, seed=seed, workers=workers)
    manifest = build_manifest("video_tree", root / "synth" / "voxceleb" / "videos", None, shard_size=10_000)
    process_shard(manifest, ShardConfig(track_face_px=85), root / "frames.parquet", root / "crops.npy",
                  {"rule": "benchmark"})


def random_resnet18(path: Path) -> Path:
    """A randomly initialised torchvision ResNet-18 state dict (seed 0) saved at ``path``."""
    import torch
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def grey_thumbnails(images: np.ndarray) -> np.ndarray:
    """16×16 grey pixels of each RGB image, flattened."""
    return np.stack([cv2.resize(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA).ravel()
                     for im in images]).astype(np.float64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=8)
    ap.add_argument("--clips", type=int, default=2, help="clips per identity")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="processes for rendering the corpus")
    ap.add_argument("--resnet18-weights", default=str(default_resnet18_weights()))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        build_shard(root, args.identities, args.clips, args.seed, args.workers)
        print(f"corpus: {args.identities} identities × {args.clips} clips, seed {args.seed}, "
              f"built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        truth_path = str(root / "synth" / "groundtruth" / "videos.parquet")
        weights, note = Path(args.resnet18_weights), "ImageNet weights"
        if not weights.is_file():
            weights, note = random_resnet18(root / "resnet18-random.pth"), f"RANDOM init ({weights} not found)"
        rows: list[tuple[str, int, float | None, float, str]] = []
        for name, cfg, remark in (("geometry_hog", {"backend": "geometry_hog"}, "offline default"),
                                  ("resnet18_imagenet", {"backend": "resnet18_imagenet",
                                                         "resnet18_weights": str(weights)}, note)):
            out = root / f"{name}.parquet"
            t0 = time.perf_counter()
            describe_shard(root / "frames.parquet", root / "crops.npy", out, DescriptorConfig(**cfg), {"rule": "benchmark"})
            seconds = time.perf_counter() - t0
            truth = with_truth(pq.read_table(out), truth_path)
            ok = np.flatnonzero(truth["status"].to_numpy() == "ok")
            desc = np.stack(truth["descriptor"].to_numpy()[ok])
            agree = nn_agreement(desc, truth["expression"].to_numpy()[ok], truth["identity"].to_numpy()[ok])
            rows.append((name, desc.shape[1], len(ok) / seconds, agree, remark))

        # baselines and parts of geometry_hog, on every frame with a crop
        frames = pq.read_table(root / "frames.parquet")
        truth = with_truth(frames.select(["video_id", "frame_idx", "identity"]), truth_path)
        ok = np.flatnonzero(frames["crop_index"].to_numpy() >= 0)
        y, ident = truth["expression"].to_numpy()[ok], truth["identity"].to_numpy()[ok]
        crops = np.load(root / "crops.npy", mmap_mode="r")[frames["crop_index"].to_numpy()[ok]]
        lm = landmarks_numpy(frames["landmarks_crop"])[ok]
        tracks = np.asarray(frames["video_id"].to_pylist(), dtype=object)[ok]
        eyes, mouths = extract_patches(crops, lm)
        gh = GeometryHog()
        hog_e, hog_m = gh.hog_features(eyes), gh.hog_features(mouths)
        steps = [track_centred(hog_e, tracks) / BLOCK_SCALE["eye_hog"],
                 track_centred(hog_m, tracks) / BLOCK_SCALE["mouth_hog"]]
        geo = [track_centred(region_shape(lm, BROWS_EYES), tracks) * GEOMETRY_WEIGHT / BLOCK_SCALE["eye_geo"],
               track_centred(region_shape(lm, MOUTH_POINTS), tracks) * GEOMETRY_WEIGHT / BLOCK_SCALE["mouth_geo"]]
        for name, x, remark in (
                ("crop pixels 16x16", grey_thumbnails(crops), "trivial baseline"),
                ("patch pixels 2x16x16", np.concatenate([grey_thumbnails(eyes), grey_thumbnails(mouths)], 1),
                 "baseline: eye+mouth patches"),
                ("  HOG, per frame", np.concatenate([hog_e, hog_m], 1), "geometry_hog design step 1"),
                ("  HOG, track-centred", np.concatenate(steps, 1), "step 2"),
                ("  + landmark shape", np.concatenate(steps + geo, 1), "step 3 (step 4 = + constant = geometry_hog)")):
            rows.append((name, x.shape[1], None, nn_agreement(x, y, ident), remark))

    print(f"\n{len(ok)} frames with crops, {len(set(ident))} identities; nearest neighbour among "
          f"other identities; chance Σp² = {chance_agreement(y):.3f} (uniform 1/8 = 0.125)")
    print(f"{'descriptor':<24}{'dims':>6}{'desc/s/core':>13}{'NN same expr':>14}  note")
    for name, dims, rate, agree, remark in rows:
        print(f"{name:<24}{dims:>6}{'' if rate is None else f'{rate:.0f}':>13}{agree:>14.3f}  {remark}")


if __name__ == "__main__":
    main()
