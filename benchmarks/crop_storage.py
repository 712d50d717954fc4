"""Benchmark: storing aligned face crops raw or encoded (PNG, JPEG, WebP): bytes, speed, and the probe's view.

For a sample of the pretraining corpus' crops (a shard's ``crops.npy``, after ``make demo``), each format's
mean bytes per crop, encode and decode time per crop on one core, the loader rate of a training batch
(random rows gathered and decoded, samples/s on one core) and the fidelity to the raw pixels (PSNR). Then the
effect on the probe: the same encoders embed the AffectNet-style evaluation crops stored each way, and a
linear probe is fitted and scored on the selection split (training items only, as
``benchmarks/evaluation_view.py``; the test split is never read). Last, the bytes and PSNR of each format on
a real face: scikit-image's ``astronaut`` photo (shipped with the package), aligned to a crop by the default
detector, landmarks and alignment. Run with the project's environment:

    python benchmarks/crop_storage.py --encoders results/synth/pretrain/random/encoder.pt results/synth/pretrain/all/encoder.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from sslfer.jpeg_store import open_images  # noqa: E402

FORMATS = {  # name: (extension, OpenCV encode parameters); "raw" is the uint8 array itself
    "raw": (None, []),
    "png": (".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]),
    "jpeg q95": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
    "jpeg q90": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90]),
    "jpeg q80": (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 80]),
    "webp q90": (".webp", [cv2.IMWRITE_WEBP_QUALITY, 90]),
}


def encode(rgb: np.ndarray, fmt: str) -> bytes:
    ext, params = FORMATS[fmt]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {fmt}")
    return buf.tobytes()


def decode(blob: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def roundtrip(crops: np.ndarray, fmt: str) -> np.ndarray:
    """``crops`` as they read back after being stored as ``fmt``."""
    return crops.copy() if fmt == "raw" else np.stack([decode(encode(c, fmt)) for c in crops])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def storage_table(crops: np.ndarray, batch: int, rng: np.random.Generator) -> None:
    print(f"{len(crops)} crops of {crops.shape[1]} px from the pretraining corpus; one core")
    print(f"{'format':<10}{'bytes/crop':>11}{'vs raw':>8}{'encode ms':>10}{'decode ms':>10}"
          f"{'batch samples/s':>16}{'PSNR dB':>9}")
    raw_bytes = crops[0].nbytes
    for fmt in FORMATS:
        if fmt == "raw":
            blobs, enc_ms, dec_ms, back = None, 0.0, 0.0, crops
            size = raw_bytes
        else:
            t0 = time.perf_counter()
            blobs = [encode(c, fmt) for c in crops]
            enc_ms = 1000 * (time.perf_counter() - t0) / len(crops)
            t0 = time.perf_counter()
            back = np.stack([decode(b) for b in blobs])
            dec_ms = 1000 * (time.perf_counter() - t0) / len(crops)
            size = np.mean([len(b) for b in blobs])
        rows = np.sort(rng.choice(len(crops), size=min(batch, len(crops)), replace=False))
        t0 = time.perf_counter()
        for _ in range(5):
            out = crops[rows].copy() if blobs is None else np.stack([decode(blobs[r]) for r in rows])
        rate = 5 * len(out) / (time.perf_counter() - t0)
        print(f"{fmt:<10}{size:>11.0f}{raw_bytes / size:>7.1f}x{enc_ms:>10.3f}{dec_ms:>10.3f}{rate:>16.0f}"
              f"{psnr(crops, back):>9.1f}", flush=True)


def probe_table(eval_set: Path, encoders: list[str], classes: int, seed: int, view: tuple[int, int]) -> None:
    import torch

    from sslfer.evaluate.features import embed_crops
    from sslfer.evaluate.probe import holdout_mask, linear_classifier
    from sslfer.train.model import load_encoder

    tab = pq.read_table(eval_set / "items.parquet", columns=["split", "label", "crop_index"]).to_pandas()
    ok = ((tab.split == "train") & (tab.crop_index >= 0) & (tab.label >= 0) & (tab.label < classes)).to_numpy()
    rows, y = tab.crop_index.to_numpy()[ok], tab.label.to_numpy()[ok].astype(np.int64)
    held = holdout_mask(y, 0.3, np.random.default_rng([seed, 11]))
    crops = np.asarray(np.load(eval_set / "crops.npy", mmap_mode="r")[rows])
    stored = {fmt: roundtrip(crops, fmt) for fmt in FORMATS}
    index = np.arange(len(rows))
    print(f"\nselection split of {eval_set}: {int((~held).sum())} fit / {int(held.sum())} scored training items; "
          f"linear probe macro-F1, view {view[0]}->{view[1]}")
    print(f"{'encoder':<44}" + "".join(f"{fmt:>10}" for fmt in FORMATS))
    torch.set_num_threads(2)
    for path in encoders:
        net, _ = load_encoder(path)
        scores = []
        for fmt in FORMATS:
            x = embed_crops(net, stored[fmt], index, view[0], view[1], desc="")
            scores.append(linear_classifier(x[~held], y[~held], x[held], y[held], seed, classes, detailed=False)["macro_f1"])
        print(f"{path[-44:]:<44}" + "".join(f"{s:>10.3f}" for s in scores), flush=True)


def real_photo_table(size: int) -> None:
    """Bytes and PSNR of each format for the aligned crop of one real face photo (scikit-image's astronaut)."""
    import skimage.data

    from sslfer.preprocess.align import align_face
    from sslfer.preprocess.detect import FaceDetector
    from sslfer.preprocess.landmarks import Landmarker

    photo = skimage.data.astronaut()
    faces = FaceDetector("dlib_hog", 1, 640, None, 0, min_face=0)(photo, None)
    face = faces.boxes[int(np.argmax(faces.scores))]
    crop, _, _ = align_face(photo, Landmarker("dlib68")(photo, face), size)
    print(f"\none real face: scikit-image's astronaut, aligned {size} px crop")
    print(f"{'format':<10}{'bytes':>9}{'vs raw':>8}{'PSNR dB':>9}")
    for fmt in FORMATS:
        n = crop.nbytes if fmt == "raw" else len(encode(crop, fmt))
        quality = psnr(crop, roundtrip(crop[None], fmt)[0])
        print(f"{fmt:<10}{n:>9}{crop.nbytes / n:>7.1f}x{quality:>9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crops", default="results/synth/frames/shard=00000/crops.npy")
    ap.add_argument("--sample", type=int, default=400, help="crops taken from the file, evenly spaced")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eval-set", default="results/eval/data/affectnet")
    ap.add_argument("--encoders", nargs="*", default=[])
    ap.add_argument("--view", default="72:64", help="resize:crop of the evaluation view")
    ap.add_argument("--classes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    all_crops = open_images(args.crops)
    pick = np.linspace(0, len(all_crops) - 1, min(args.sample, len(all_crops))).astype(int)
    crops = np.asarray(all_crops[pick])
    crops = crops[crops.reshape(len(crops), -1).std(1) > 0]          # slots of frames without a face are zeros
    storage_table(crops, args.batch, np.random.default_rng(args.seed))
    if args.encoders:
        probe_table(Path(args.eval_set), args.encoders, args.classes, args.seed,
                    tuple(int(v) for v in args.view.split(":")))
    real_photo_table(crops.shape[1])


if __name__ == "__main__":
    main()
