"""Benchmark: sampled frames per second per core for decode → detect → landmarks → align/crop.

Prints one table row per (source, detector setting): frames/s of the whole per-frame chain on one core,
the time split per step, and the process's peak memory. Sources: a few synthetic 224 px videos and a
generated 640×360 H.264 clip (900 frames, 36 s). Run with the project's environment:

    python benchmarks/preprocess_throughput.py [--frames-360p 900] [--videos 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from sslfer.preprocess.align import align_face  # noqa: E402
from sslfer.preprocess.decode import iter_frames  # noqa: E402
from sslfer.preprocess.detect import FaceDetector, pick_track_face  # noqa: E402
from sslfer.preprocess.landmarks import Landmarker  # noqa: E402
from sslfer.preprocess.manifest import probe_video  # noqa: E402


def make_360p_clip(path: Path, n: int) -> None:
    """A 640×360 talking-face clip rendered by the synthetic corpus' renderer."""
    from sslfer.synth.expression import expression_vector
    from sslfer.synth.geometry import Pose
    from sslfer.synth.identity import sample_identity
    from sslfer.synth.render import Camera, Lighting, make_background, render_face
    from sslfer.synth.videos import encode_h264

    rng = np.random.default_rng(0)
    ident = sample_identity(5, 0)
    bg = make_background((360, 640), rng)

    def frames():
        for i in range(n):
            pose = Pose(8 * np.sin(i / 40), 3 * np.sin(i / 55), 2 * np.sin(i / 70))
            act = expression_vector(1 + (i // 100) % 7, 0.5 + 0.4 * np.sin(i / 15) ** 2)
            img, _ = render_face(ident, act, pose, Camera((360, 640), (320 + 20 * np.sin(i / 90), 160), 62),
                                 Lighting(), bg, rng)
            yield img

    encode_h264(frames(), path, 25, (360, 640))


def bench(path: Path, sample_fps: float, detector: FaceDetector, landmarker: Landmarker, decoder: str) -> dict:
    pr = probe_video(path)
    t = {"decode": 0.0, "detect": 0.0, "landmarks": 0.0, "align": 0.0}
    n = faces = 0
    prev = None
    it = iter_frames(path, "video", pr.n_frames, pr.fps, sample_fps, decoder)
    while True:
        t0 = time.perf_counter()
        item = next(it, None)
        t1 = time.perf_counter()
        t["decode"] += t1 - t0
        if item is None:
            break
        _, rgb, _ = item
        n += 1
        dets = detector(rgb, None if prev is None else float(prev[2] - prev[0]))
        t2 = time.perf_counter()
        t["detect"] += t2 - t1
        if len(dets):
            k = pick_track_face(dets, prev)
            prev = dets.boxes[k]
            lm = landmarker(rgb, prev)
            t3 = time.perf_counter()
            t["landmarks"] += t3 - t2
            align_face(rgb, lm, 128)
            t["align"] += time.perf_counter() - t3
            faces += 1
    total = sum(t.values())
    return {"frames": n, "faces": faces, "fps": n / total, **{k: 1000 * v / max(n, 1) for k, v in t.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames-360p", type=int, default=900)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--synth-root", default="resources/synth/voxceleb/videos")
    ap.add_argument("--decoder", default="decord", choices=["decord", "pyav"])
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip360p.mp4"
        make_360p_clip(clip, args.frames_360p)
        synth = sorted(Path(args.synth_root).rglob("*.mp4"))[: args.videos]
        landmarker = Landmarker("dlib68")
        print(f"{'source':<22}{'detector':<24}{'frames':>7}{'faces':>7}{'fr/s/core':>10}"
              f"{'decode':>8}{'detect':>8}{'lmk':>7}{'align':>7}  (ms per sampled frame)")
        for label, paths in (("synth 224px", synth), ("640x360 H.264", [clip])):
            if not paths:
                print(f"{label:<22}(none: run `make demo` first for the synthetic videos)")
                continue
            for det_name, upsample, track in (("dlib_hog", 1, 0), ("dlib_hog", 0, 0), ("dlib_hog", 1, 85),
                                              ("opencv_haar", 1, 0)):
                det = FaceDetector(det_name, upsample, 640, track_face_px=track)
                det_name = f"{det_name}{' track' if track else ''}"
                rows = [bench(p, 25 / 6, det, landmarker, args.decoder) for p in paths]
                n = sum(r["frames"] for r in rows)
                agg = {k: sum(r[k] * r["frames"] for r in rows) / n for k in ("decode", "detect", "landmarks", "align")}
                fps = 1000 / sum(agg.values())
                print(f"{label:<22}{det_name + ' up=' + str(upsample):<24}{n:>7}{sum(r['faces'] for r in rows):>7}"
                      f"{fps:>10.1f}{agg['decode']:>8.2f}{agg['detect']:>8.2f}{agg['landmarks']:>7.2f}{agg['align']:>7.2f}")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
