"""Benchmark: the figures that need a GPU, in one run — training step, evaluation features, GPU face detection.

Prints, on ``--device`` (default: cuda when torch sees one, else cpu):

- the pretraining step (forward, MaskFN loss, backward, Adam; random images) in images/s for ResNet-18 and
  ResNet-50 at ``--size`` px (112, the paper's), fp32 beside bf16 autocast + channels_last, and the peak GPU
  memory of each;
- evaluation feature extraction (``sslfer.evaluate.features.embed_crops``, uint8 128 px crops, view
  ``--size`` + 16 → ``--size``) in images/s, on the device and on the CPU side by side;
- insightface SCRFD detection (``preprocess.detect.backend: insightface``) in frames/s on 640 × 360 frames, on
  the device and on the CPU, when ``--insightface-dir`` holds ``det_10g.onnx`` (never downloaded here);
  otherwise the row says it was not measured.

    python benchmarks/gpu_figures.py --steps 20 --batch 512
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from loader_throughput import time_step  # noqa: E402
from sslfer.evaluate.features import embed_crops  # noqa: E402
from sslfer.train.model import make_backbone  # noqa: E402


def peak_gib(device: torch.device) -> str:
    if device.type != "cuda":
        return "-"
    gib = torch.cuda.max_memory_allocated(device) / 2 ** 30
    torch.cuda.reset_peak_memory_stats(device)
    return f"{gib:.1f}"


def feature_rate(device: torch.device, n: int, size: int) -> float:
    net, _ = make_backbone("resnet18")
    crops = np.random.default_rng(0).integers(0, 255, (n, 128, 128, 3), dtype=np.uint8)
    rows = np.arange(n)
    embed_crops(net, crops, rows[: min(n, 256)], size + 16, size, device=device, desc="")   # warm-up
    t0 = time.perf_counter()
    embed_crops(net, crops, rows, size + 16, size, device=device, desc="")
    return n / (time.perf_counter() - t0)


def detection_rate(model_dir: str, device: str, frames: int) -> float:
    from sslfer.preprocess.detect import FaceDetector

    det = FaceDetector("insightface", model_dir=model_dir, device=device)
    rgb = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    det(rgb)
    t0 = time.perf_counter()
    for _ in range(frames):
        det(rgb)
    return frames / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch", type=int, default=512, help="images per training step")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per row")
    ap.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    ap.add_argument("--features", type=int, default=8192, help="crops embedded on the device (the CPU gets 1/16)")
    ap.add_argument("--insightface-dir", default=None, help="folder holding det_10g.onnx")
    ap.add_argument("--frames", type=int, default=200, help="frames timed per detection row")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}, {torch.get_num_threads()} CPU threads")
    print(f"\n{'training step':<44}{'images/s':>10}{'peak GiB':>10}")
    for backbone in args.backbones:
        for fast in (False, True):
            rate = time_step(device, args.size, args.batch, args.steps, backbone, fast)
            label = f"{backbone} {args.size}px x{args.batch} " + ("bf16 channels_last" if fast else "fp32")
            print(f"{label:<44}{rate:>10.1f}{peak_gib(device):>10}", flush=True)
    print(f"\n{'evaluation features (ResNet-18)':<44}{'images/s':>10}")
    print(f"{f'{device.type} {args.size}px':<44}{feature_rate(device, args.features, args.size):>10.1f}", flush=True)
    if device.type != "cpu":
        n_cpu = max(args.features // 16, 64)
        print(f"{f'cpu {args.size}px':<44}{feature_rate(torch.device('cpu'), n_cpu, args.size):>10.1f}", flush=True)
    print(f"\n{'face detection, insightface SCRFD, 640x360':<44}{'frames/s':>10}")
    if not args.insightface_dir or not (Path(args.insightface_dir) / "det_10g.onnx").is_file():
        print(f"{'not measured (no --insightface-dir with det_10g.onnx)':<44}{'-':>10}")
        return
    for dev in dict.fromkeys([args.device, "cpu"]):
        print(f"{dev:<44}{detection_rate(args.insightface_dir, dev, args.frames):>10.1f}", flush=True)


if __name__ == "__main__":
    main()
