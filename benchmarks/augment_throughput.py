"""Benchmark: images/s of the batched tensor augmentations vs the reference-style per-image PIL pipeline.

For a batch of 256 face crops (128 px) and two sizes (128 → 112, the paper's; 72 → 64, the CPU default)
it prints images/s of :func:`sslfer.train.augment.augment` (view 1: jitter always, landmark mask p 0.8) on
the CPU (``torch`` threads as set) and on CUDA when there is one, and, on the same images in the same run,
of torchvision.transforms v1 on PIL images, one image at a time in this process: Resize, RandomCrop,
RandomHorizontalFlip, ColorJitter, RandomApply(GaussianBlur), RandomGrayscale, ToTensor, Normalize. The PIL
pipeline has no landmark mask (the reference ran a dlib detector per image for it, far slower still).

Images: the crops of a preprocessed shard (``--shard results/<corpus>/frames/shard=00000``) or, by default,
smooth random images with landmarks placed on the alignment template. Run with the project's environment:

    python benchmarks/augment_throughput.py [--shard DIR] [--batch 256] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from sslfer.preprocess.align import TEMPLATE  # noqa: E402
from sslfer.train.augment import augment, view_configs  # noqa: E402
from sslfer.train.image_ops import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

SIZES = ((128, 112), (72, 64))


def placeholder_batch(n: int, size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random RGB images and landmarks whose eyes and mouth sit on the alignment template."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, (n, 3, 16, 16)).astype(np.float32)
    images = torch.nn.functional.interpolate(torch.from_numpy(low), size=(size, size), mode="bicubic",
                                             align_corners=False).clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    def ring(k: int) -> np.ndarray:
        angle = np.linspace(0, 2 * np.pi, k, endpoint=False)
        return np.stack([np.cos(angle), np.sin(angle)], 1)

    lm = np.zeros((68, 2))
    lm[:36] = (0.5, 0.6) + ring(36) * (0.4, 0.35)  # jaw, brows, nose: unused by the mask
    lm[36:42] = TEMPLATE[0] + ring(6) * (0.05, 0.02)
    lm[42:48] = TEMPLATE[1] + ring(6) * (0.05, 0.02)
    lm[48:68] = TEMPLATE[2] + ring(20) * (0.1, 0.04)
    landmarks = lm[None] * size + rng.normal(0, 1.0, (n, 68, 2))
    return np.ascontiguousarray(images), landmarks.astype(np.float32)


def shard_batch(shard: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` ok crops of a preprocessed shard and their crop landmarks (repeated if fewer)."""
    import pyarrow.parquet as pq

    from sslfer.parquet import landmarks_numpy

    tab = pq.read_table(shard / "frames.parquet", columns=["status", "crop_index", "landmarks_crop"])
    ok = np.flatnonzero(np.asarray(tab.column("status").to_pylist()) == "ok")
    rows = ok[np.arange(n) % len(ok)]
    crops = np.load(shard / "crops.npy", mmap_mode="r")
    index = tab.column("crop_index").to_numpy()[rows]
    return np.ascontiguousarray(crops[index]), landmarks_numpy(tab.column("landmarks_crop"))[rows]


def rate(fn, n_images: int, repeats: int, sync=lambda: None) -> float:
    """Images/s of ``fn`` (one warm-up call, then ``repeats`` timed calls)."""
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return n_images * repeats / (time.perf_counter() - start)


def pil_pipeline(resize: int, crop: int) -> T.Compose:
    """The reference's view-1 pipeline (without the landmark mask), per PIL image."""
    return T.Compose([
        T.Resize((resize, resize)), T.RandomCrop(crop), T.RandomHorizontalFlip(0.5),
        T.ColorJitter(0.4, 0.4, 0.4, 0.2), T.RandomApply([T.GaussianBlur(3, (0.1, 2.0))], p=0.5),
        T.RandomGrayscale(0.2), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shard", type=Path, help="a preprocessed shard directory (frames.parquet + crops.npy)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, landmarks = shard_batch(args.shard, args.batch) if args.shard else placeholder_batch(args.batch)
    imgs, lms = torch.from_numpy(images), torch.from_numpy(landmarks)
    pils = [Image.fromarray(im) for im in images]
    torch.manual_seed(0)
    print(f"batch {args.batch} of {images.shape[1]} px crops, {args.repeats} repeats, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'size':>10} {'pipeline':<34} {'images/s':>10}")
    for resize, crop in SIZES:
        cfg = view_configs(resize=resize, crop=crop)[0]
        gen = torch.Generator().manual_seed(0)
        rows = [("batched tensor, CPU", rate(lambda: augment(imgs, lms, cfg, gen), args.batch, args.repeats))]
        if torch.cuda.is_available():
            gi, gl = imgs.cuda(), lms.cuda()
            rows.append(("batched tensor, CUDA", rate(lambda: augment(gi, gl, cfg, gen), args.batch,
                                                      args.repeats, torch.cuda.synchronize)))
        pipe = pil_pipeline(resize, crop)
        rows.append(("per-image PIL (torchvision v1), CPU",
                     rate(lambda: torch.stack([pipe(p) for p in pils]), args.batch, args.repeats)))
        for name, value in rows:
            print(f"{f'{resize}->{crop}':>10} {name:<34} {value:>10.0f}")


if __name__ == "__main__":
    main()
