"""Benchmark: sampled frames per second per core for decode → detect → landmarks → align/crop.

Prints one table row per (source, detector setting): frames/s of the whole per-frame chain on one core,
the time split per step, and the process's peak memory. Sources: a few synthetic 224 px videos and a
generated 640×360 H.264 clip (900 frames, 36 s). Then the peak memory of a whole shard job
(``process_shard``, in a fresh process) on 640×360 clips of growing length, to show that it stays bounded
(frames are streamed, crops go to a memory-mapped file). Run with the project's environment:

    python benchmarks/preprocess_throughput.py [--frames-360p 900] [--videos 4] [--memory-minutes 1 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
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


def make_long_clip(path: Path, n: int, unique: int = 150) -> None:
    """A 640×360 clip of ``n`` frames cycling through ``unique`` rendered ones (cheap to make, long to decode)."""
    from sslfer.synth.videos import encode_h264

    tmp = path.with_suffix(".unique.mp4")
    make_360p_clip(tmp, unique)
    frames = [rgb for _, rgb, _ in iter_frames(tmp, "video", unique, 25.0, 25.0, "pyav")]
    encode_h264((frames[i % unique] for i in range(n)), path, 25, (360, 640))


def shard_peak_memory(clip: Path, out: Path) -> str:
    """Run one shard job on ``clip`` in a fresh interpreter; returns its printed summary line."""
    code = (
        "import resource, sys, pyarrow as pa\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / 'workflow')!r})\n"
        "from sslfer.preprocess.manifest import build_manifest\n"
        "from sslfer.preprocess.shard import ShardConfig, process_shard\n"
        f"m = build_manifest('csv', {str(out / 'list.csv')!r}, None, 1)\n"
        f"c = process_shard(m, ShardConfig(track_face_px=85), {str(out / 'frames.parquet')!r}, "
        f"{str(out / 'crops.npy')!r}, {{}})\n"
        "print(sum(c.values()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    (out / "list.csv").write_text(f"path,identity\n{clip},id00001\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.split("\n")[-2]


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
    ap.add_argument("--memory-minutes", type=float, nargs="*", default=[1.0, 4.0],
                    help="clip lengths for the shard-memory rows (none: skip)")
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
        print(f"peak memory of this process (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        if args.memory_minutes:
            print(f"\n{'shard job on one 640x360 clip':<34}{'video frames':>13}{'sampled':>9}{'peak RSS MiB':>14}")
        for minutes in args.memory_minutes:
            n = int(minutes * 60 * 25)
            long_clip = Path(tmp) / f"long{n}.mp4"
            make_long_clip(long_clip, n)
            out = Path(tmp) / f"mem{n}"
            out.mkdir()
            sampled, rss = shard_peak_memory(long_clip, out).split()
            print(f"{f'{minutes:g} min':<34}{n:>13}{sampled:>9}{rss:>14}")


if __name__ == "__main__":
    main()
