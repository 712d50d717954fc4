"""Benchmark: frozen-encoder feature extraction (images/s), CPU and CUDA side by side in one run.

Times :func:`sslfer.evaluate.features.embed_crops` — the function the evaluation rules call — with the
default encoder (``pretrain.backbone``, untrained: the weights do not change the cost), the default
evaluation resolution (``pretrain.augment.resize``/``crop``) and batch size (``evaluation.batch_size``), all
read from config/schema.yaml, on uint8 crops of ``preprocess.crop_size`` in a memory-mapped ``crops.npy``
(random pixels: a ResNet's cost does not depend on the content), read in shuffled order as items are.
Rows: the CPU (torch's threads), the GPU in float32, the GPU with bfloat16 autocast (``amp``); without a GPU
the CUDA rows say "not measured (no GPU)". One untimed warm-up pass per row. Run with the project's
environment:

    python benchmarks/feature_throughput.py [--cpu-images 1024] [--gpu-images 20000] [--resize 128 --crop 112]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from sslfer.config import prepare_config  # noqa: E402
from sslfer.device import describe, resolve_device  # noqa: E402
from sslfer.evaluate.features import embed_crops  # noqa: E402
from sslfer.train.model import load_encoder, random_encoder  # noqa: E402


def measure(encoder: Path, crops: np.ndarray, n: int, resize: int, crop: int, batch_size: int, device: str,
            amp: bool = False) -> float:
    """Images/s of :func:`embed_crops` over ``n`` shuffled rows (after one warm-up batch)."""
    net, _ = load_encoder(str(encoder))
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(crops), n)
    embed_crops(net, crops, rows[:batch_size], resize, crop, batch_size, device, desc="warm-up", amp=amp)
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    feats = embed_crops(net, crops, rows, resize, crop, batch_size, device, desc=f"{device}", amp=amp)
    dt = time.perf_counter() - t0                  # embed_crops returns host arrays: the GPU work is done
    assert feats.shape[0] == n and np.isfinite(feats).all()
    return n / dt


def main() -> None:
    cfg = prepare_config({}, REPO / "config" / "schema.yaml", base=REPO)
    aug = cfg["pretrain"]["augment"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default=cfg["pretrain"]["backbone"])
    ap.add_argument("--resize", type=int, default=aug["resize"])
    ap.add_argument("--crop", type=int, default=aug["crop"])
    ap.add_argument("--batch-size", type=int, default=cfg["evaluation"]["batch_size"])
    ap.add_argument("--crop-size", type=int, default=cfg["preprocess"]["crop_size"])
    ap.add_argument("--pool", type=int, default=4096, help="distinct crops in the memory-mapped file")
    ap.add_argument("--cpu-images", type=int, default=1024)
    ap.add_argument("--gpu-images", type=int, default=20000)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        encoder = random_encoder(tmp / "encoder.pt", args.backbone, seed=0, config={})
        rng = np.random.default_rng(0)
        np.save(tmp / "crops.npy", rng.integers(0, 256, (args.pool, args.crop_size, args.crop_size, 3), np.uint8))
        crops = np.load(tmp / "crops.npy", mmap_mode="r")
        print(f"feature extraction: {args.backbone}, {args.crop_size} px crops → resize {args.resize}, "
              f"centre crop {args.crop}, batch {args.batch_size}")
        ips = measure(encoder, crops, args.cpu_images, args.resize, args.crop, args.batch_size, "cpu")
        rows = [(describe("cpu"), f"{ips:,.0f} images/s")]
        if torch.cuda.is_available():
            line = describe("cuda")
            for amp in (False, True):
                ips = measure(encoder, crops, args.gpu_images, args.resize, args.crop, args.batch_size, "cuda", amp)
                rows.append((f"{line} {'bf16 autocast' if amp else 'float32'}", f"{ips:,.0f} images/s"))
        else:
            rows.append(("device: cuda", "not measured (no GPU)"))
        width = max(len(r[0]) for r in rows)
        print(f"{'device':<{width}}  throughput")
        for name, value in rows:
            print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
