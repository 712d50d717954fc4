"""Benchmark: training samples per second of our loader vs a reference-style loader, and training-step speed.

Builds a small synthetic corpus (``--identities`` people, one 5 s video each) and runs the real stages on it
(preprocessing → pairs → swaps → descriptors). The sampled frames are also written as 224 px JPEG files,
the form the reference read. Then, on the same (A, P, NA, NP) quadruples of one epoch's draw:

- ``reference-style``: per sample, read the 4 frames as JPEG files (PIL), run dlib HOG detection
  (upsample 1) + the 68-point predictor on each, cut the eye and mouth patches (square pad, 64 px,
  ImageNet-normalised tensors), draw the landmark-region mask, and augment each image with the
  reference's torchvision-on-PIL pipeline (Resize 128, RandomCrop 112, flip, ColorJitter, blur, grey);
- ``ours``: :meth:`TrainingData.batch` (cached crops, landmarks, swaps with p = 0.8, descriptors) +
  :func:`augment` of both views at 128 → 112 px, batched (on CUDA when there is one).

A sample is 4 images. Then the training step (forward + backward + Adam) in images/s for ResNet-18 at the
default CPU size (72 → 64 px) and at the paper's 112 px; on CUDA with bf16 autocast and channels_last,
512 images per step. Runs unchanged on a CUDA machine in a few minutes:

    python benchmarks/loader_throughput.py [--identities 8] [--ref-samples 24] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from sslfer.descriptors.backends import DescriptorConfig  # noqa: E402
from sslfer.descriptors.shard import describe_shard  # noqa: E402
from sslfer.pairs.index import build_pairs  # noqa: E402
from sslfer.parquet import write_parquet  # noqa: E402
from sslfer.preprocess.decode import iter_frames  # noqa: E402
from sslfer.preprocess.manifest import build_manifest  # noqa: E402
from sslfer.preprocess.shard import ShardConfig, process_shard  # noqa: E402
from sslfer.swap.shard import SwapConfig, swap_shard  # noqa: E402
from sslfer.synth.corpus import write_videos  # noqa: E402
from sslfer.train.augment import AugmentConfig, augment  # noqa: E402
from sslfer.train.data import TrainingData  # noqa: E402
from sslfer.train.losses import false_negatives, maskfn_loss  # noqa: E402
from sslfer.train.model import ContrastiveModel  # noqa: E402

PAIRS = {"positive_s": [0.48, 1.44], "hard_negative_min_s": 2.88, "distribution": "c"}
SWAP = {"donors_per_frame": 2, "pose_candidates": 16, "max_frames_per_track": 0, "feather_px": 3.0,
        "colour_correct": True}


def build_corpus(root: Path, identities: int, seed: int) -> Path:
    """Synthetic videos → one shard of crops → pairs, swaps, descriptors; the frames also as JPEG files."""
    import cv2

    write_videos(root / "synth", {"identities": identities, "clips_per_identity": 1, "utterances_per_clip": 1,
                                  "duration_s": [5.0, 5.0], "fps": 25}, seed=seed, workers=2)
    manifest = build_manifest("video_tree", root / "synth" / "voxceleb" / "videos", None, 10_000, 3.5)
    pq.write_table(manifest, root / "videos.parquet")
    shard = root / "frames" / "shard=00000"
    process_shard(manifest, ShardConfig(track_face_px=85), shard / "frames.parquet", shard / "crops.npy", {})
    write_parquet(build_pairs(root / "videos.parquet", [shard / "frames.parquet"], PAIRS), root / "pairs.parquet",
                  {"config": {"pairs": PAIRS}})
    swaps = root / "swaps" / "shard=00000"
    swap_shard([str(shard / "frames.parquet")], 0, swaps / "swaps.parquet", swaps / "swaps.npy", SwapConfig(**SWAP),
               seed, {})
    describe_shard(shard / "frames.parquet", shard / "crops.npy",
                   root / "descriptors" / "shard=00000" / "descriptors.parquet", DescriptorConfig(), {})
    for row in manifest.to_pylist():                        # the reference's input: JPEG frames of the tracks
        out = root / "jpeg" / row["video_id"]
        out.mkdir(parents=True)
        for idx, rgb, _ in iter_frames(row["source_path"], "video", row["n_frames"], row["fps"], 25 / 6):
            cv2.imwrite(str(out / f"{idx}.jpg"), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


class ReferenceStyleLoader:
    """Per sample: 4 JPEG reads, 4 × (dlib detect + 68 landmarks), eye/mouth patches, PIL augmentations."""

    def __init__(self, jpeg_root: Path) -> None:
        import dlib
        from torchvision import transforms as T

        from sslfer.model_files import dlib_model_path

        self.root = jpeg_root
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68")))
        self.dlib = dlib
        norm = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
        common = [T.Resize((128, 128)), T.RandomCrop(112), T.RandomHorizontalFlip()]
        tail = [T.RandomApply([T.GaussianBlur(3, (0.1, 2.0))], p=0.5), T.RandomGrayscale(0.2), T.ToTensor(), norm]
        jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.2)
        self.view1 = T.Compose(common + [jitter] + tail)
        self.view2 = T.Compose(common + [T.RandomApply([jitter], p=0.8)] + tail)
        self.patch = T.Compose([T.ToTensor(), T.Resize((64, 64), antialias=True), norm])

    def _landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = self.detector(rgb, 1)
        if len(faces) == 0:
            return None
        shape = self.predictor(rgb, faces[-1])
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def _patch(self, img, lm: np.ndarray | None, lo: int, hi: int, pad: int):
        from PIL import Image, ImageOps

        if lm is None:
            return self.patch(Image.new("RGB", (64, 64)))
        x0, y0 = lm[lo:hi].min(0)
        x1, y1 = lm[lo:hi].max(0)
        box = img.crop((int(x0), int(y0) - pad, int(x1), int(y1) + pad))
        side = max(box.size)
        return self.patch(ImageOps.pad(box, (side, side), color=(0, 0, 0)))

    def _mask(self, img, lm: np.ndarray | None, rng: np.random.Generator):
        from PIL import ImageDraw

        if lm is None or rng.random() > 0.8:
            return img
        lo, hi = [(36, 42), (42, 48), (48, 68)][rng.integers(3)]
        (x0, y0), (x1, y1) = lm[lo:hi].min(0) - 10, lm[lo:hi].max(0) + 10
        out = img.copy()
        ImageDraw.Draw(out).ellipse([x0, y0, x1, y1], fill=tuple(int(v) for v in np.asarray(img).mean((0, 1))))
        return out

    def sample(self, paths: list[Path], rng: np.random.Generator):
        from PIL import Image

        views, patches = [], []
        for k, path in enumerate(paths):
            img = Image.open(path).convert("RGB")
            lm = self._landmarks(np.asarray(img))
            patches += [self._patch(img, lm, 36, 48, 10), self._patch(img, lm, 48, 68, 0)]
            views.append((self.view1 if k in (0, 2) else self.view2)(self._mask(img, lm, rng)))
        return torch.stack(views), torch.stack(patches)


def time_reference(data: TrainingData, root: Path, draw, n: int) -> float:
    loader = ReferenceStyleLoader(root / "jpeg")
    rng = np.random.default_rng(0)
    idx = data.index
    t0 = time.perf_counter()
    for row in range(n):
        frames = [draw.anchor[row], draw.positive[row], draw.neg_anchor[row], draw.neg_positive[row]]
        loader.sample([root / "jpeg" / idx.video_id[idx.frame_track[f]] / f"{idx.frame_idx[f]}.jpg" for f in frames], rng)
    return n / (time.perf_counter() - t0)


def time_ours(data: TrainingData, draw, batch_tracks: int, repeats: int, device: torch.device) -> float:
    view1, view2 = AugmentConfig(resize=128, crop=112, jitter_p=1.0), AugmentConfig(resize=128, crop=112, jitter_p=0.8)
    rng, g = np.random.default_rng(0), torch.Generator().manual_seed(0)
    rows_all = np.arange(len(draw.track))
    n = 0
    t0 = time.perf_counter()
    for r in range(repeats):
        rows = np.resize(np.roll(rows_all, r), batch_tracks)
        b = data.batch(draw, rows, rng, 0.8)
        images = torch.from_numpy(b.images).to(device)
        lms = torch.from_numpy(b.landmarks).to(device)
        half = len(images) // 2
        augment(images[:half], lms[:half], view1, g)
        augment(images[half:], lms[half:], view2, g)
        torch.from_numpy(b.descriptors).to(device)
        n += batch_tracks
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def time_step(device: torch.device, size: int, images: int, steps: int, backbone: str = "resnet18",
              fast: bool | None = None) -> float:
    """Training-step images/s (forward, MaskFN loss, backward, Adam) on random images. ``fast``: bf16 autocast and
    channels_last (default: on CUDA only)."""
    fast = device.type == "cuda" if fast is None else fast
    model = ContrastiveModel(backbone).to(device)
    if fast:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=1e-4)
    x = torch.randn(images, 3, size, size, device=device)
    if fast:
        x = x.contiguous(memory_format=torch.channels_last)
    group = torch.arange(images, device=device) % (images // 2)
    desc = torch.randn(images, 16, device=device)
    valid = torch.ones(images, dtype=torch.bool, device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            z = model(x).float()
        out = maskfn_loss(z, 0.07, false_negatives(desc, valid, group, "top1"))
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    step()                                   # warm-up (cuDNN autotune, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identities", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ref-samples", type=int, default=24, help="samples timed for the reference-style loader")
    ap.add_argument("--batch-tracks", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per row")
    args = ap.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = build_corpus(Path(tmp), args.identities, args.seed)
        data = TrainingData(root / "pairs.parquet", root / "frames", root / "swaps", root / "descriptors")
        draw = data.index.draw(args.seed, 0, True, True)
        ref = time_reference(data, root, draw, min(args.ref_samples, len(draw.track)))
        ours = time_ours(data, draw, args.batch_tracks, 8, device)
        print(f"corpus: {args.identities} identities, {len(draw.track)} tracks, {data.index.n_frames} usable frames, "
              f"{len(data.swap_row)} swaps; one core; a sample = A, P, NA, NP (4 images) at 112 px")
        print(f"{'loader':<46}{'samples/s':>10}{'images/s':>10}")
        print(f"{'reference-style (JPEG + dlib + PIL), CPU':<46}{ref:>10.1f}{4 * ref:>10.1f}")
        print(f"{f'ours (cached crops, batched augment), {device.type}':<46}{ours:>10.1f}{4 * ours:>10.1f}")
        print(f"speed-up: {ours / ref:.0f}x")
    print(f"\n{'training step (ResNet-18, MaskFN loss, Adam)':<46}{'images/s':>10}")
    rows = [(64, 128), (112, 128)] if device.type == "cpu" else [(112, 512)]
    for size, images in rows:
        label = f"{device.type} {size}px, {images} images/step" + (", bf16 channels_last" if device.type == "cuda" else "")
        print(f"{label:<46}{time_step(device, size, images, args.steps):>10.1f}")


if __name__ == "__main__":
    main()
