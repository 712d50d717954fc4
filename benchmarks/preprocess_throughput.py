"""Benchmark: sampled frames per second per core for decode → detect → landmarks → align/crop, and recall.

Prints one row per (source, detector setting), the settings interleaved video by video: frames/s of the whole
per-frame chain on one core, the time split per step, the share of sampled frames where a face was found and
where several were counted, and the track face's mean landmark error against the renderer's ground truth
(inter-ocular units, outer eye corners). The first two settings are the old default (full search of every
frame, ``upsample: 1``) and the new one (``min_face: 0.25``). Sources: the synthetic corpus' 224 px
face-track videos (after ``make demo``), a generated 640×360 H.264 clip (900 frames, 36 s, one face), and a
generated 224 px clip of two people side by side (a smaller and a larger face). Then the peak memory of a
whole shard job (``process_shard``, in a fresh process) on 640×360 clips of growing length, to show that it
stays bounded. Run with the project's environment:

    python benchmarks/preprocess_throughput.py [--frames-360p 900] [--videos 8] [--memory-minutes 1 4]
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

from sslfer.parquet import landmarks_numpy  # noqa: E402
from sslfer.preprocess.align import align_face  # noqa: E402
from sslfer.preprocess.decode import iter_frames  # noqa: E402
from sslfer.preprocess.detect import FaceDetector, pick_track_face  # noqa: E402
from sslfer.preprocess.landmarks import Landmarker  # noqa: E402
from sslfer.preprocess.manifest import probe_video  # noqa: E402

SETTINGS = (  # (label, FaceDetector arguments)
    ("old default: full, up=1", dict(backend="dlib_hog", upsample=1, min_face=0.0)),
    ("new default: min_face .25", dict(backend="dlib_hog", upsample=1, min_face=0.25)),
    ("min_face .3", dict(backend="dlib_hog", upsample=1, min_face=0.3)),
    ("full, up=0", dict(backend="dlib_hog", upsample=0, min_face=0.0)),
    ("track_face_px 85", dict(backend="dlib_hog", upsample=1, min_face=0.0, track_face_px=85)),
    ("opencv_haar", dict(backend="opencv_haar", upsample=1, min_face=0.0)),
)


def make_360p_clip(path: Path, n: int) -> dict[int, np.ndarray]:
    """A 640×360 talking-face clip rendered by the synthetic corpus' renderer; returns its landmarks per frame."""
    from sslfer.synth.expression import expression_vector
    from sslfer.synth.geometry import Pose
    from sslfer.synth.identity import sample_identity
    from sslfer.synth.render import Camera, Lighting, make_background, render_face
    from sslfer.synth.videos import encode_h264

    rng = np.random.default_rng(0)
    ident = sample_identity(5, 0)
    bg = make_background((360, 640), rng)
    truth: dict[int, np.ndarray] = {}

    def frames():
        for i in range(n):
            pose = Pose(8 * np.sin(i / 40), 3 * np.sin(i / 55), 2 * np.sin(i / 70))
            act = expression_vector(1 + (i // 100) % 7, 0.5 + 0.4 * np.sin(i / 15) ** 2)
            img, truth[i] = render_face(ident, act, pose, Camera((360, 640), (320 + 20 * np.sin(i / 90), 160), 62),
                                        Lighting(), bg, rng)
            yield img

    encode_h264(frames(), path, 25, (360, 640))
    return truth


def make_two_face_clip(path: Path, n: int = 150) -> None:
    """A 224 px clip of two people side by side, the left one smaller (as the preprocessing tests' clip)."""
    from sslfer.synth.expression import expression_vector
    from sslfer.synth.geometry import Pose
    from sslfer.synth.identity import sample_identity
    from sslfer.synth.render import Camera, Lighting, make_background, render_face
    from sslfer.synth.videos import encode_h264

    rng = np.random.default_rng(1)
    bg = make_background((224, 224), rng)
    a, b = sample_identity(11, 0), sample_identity(12, 0)

    def frames():
        for i in range(n):
            left, _ = render_face(a, expression_vector(1, 0.5), Pose(4 * np.sin(i / 20)), Camera((224, 224), (56, 100), 28),
                                  Lighting(), bg, rng)
            right, _ = render_face(b, expression_vector(0, 0), Pose(), Camera((224, 224), (168, 100), 40), Lighting(), bg, rng)
            yield np.concatenate([left[:, :112], right[:, 112:]], axis=1)

    encode_h264(frames(), path, 25, (224, 224))


def synth_truth(synth_root: Path, paths: list[Path]) -> dict[Path, dict[int, np.ndarray]]:
    """Ground-truth landmarks per frame of the synthetic corpus' videos (``groundtruth/videos.parquet``)."""
    import pyarrow.parquet as pq

    gt = pq.read_table(synth_root / "groundtruth" / "videos.parquet", columns=["path", "frame_idx", "landmarks"])
    lms = landmarks_numpy(gt.column("landmarks"))
    by_path: dict[str, dict[int, np.ndarray]] = {}
    for p, f, lm in zip(gt.column("path").to_pylist(), gt.column("frame_idx").to_pylist(), lms):
        by_path.setdefault(p, {})[int(f)] = lm
    return {p: by_path.get(str(p.relative_to(synth_root)), {}) for p in paths}


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
        f"c = process_shard(m, ShardConfig(), {str(out / 'frames.parquet')!r}, "
        f"{str(out / 'crops.npy')!r}, {{}})\n"
        "print(sum(c.values()), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n")
    (out / "list.csv").write_text(f"path,identity\n{clip},id00001\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.split("\n")[-2]


def bench(path: Path, sample_fps: float, detector: FaceDetector, landmarker: Landmarker, decoder: str,
          truth: dict[int, np.ndarray]) -> dict:
    """One video through the chain as a shard job runs it; times, counts and landmark errors."""
    pr = probe_video(path)
    t = {"decode": 0.0, "detect": 0.0, "landmarks": 0.0, "align": 0.0}
    n = found = several = 0
    errors: list[float] = []
    prev = None
    it = iter_frames(path, "video", pr.n_frames, pr.fps, sample_fps, decoder)
    while True:
        t0 = time.perf_counter()
        item = next(it, None)
        t1 = time.perf_counter()
        t["decode"] += t1 - t0
        if item is None:
            break
        idx, rgb, _ = item
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
            found += 1
            several += len(dets) > 1
            if idx in truth:
                gt = truth[idx]
                errors.append(float(np.mean(np.linalg.norm(lm - gt, axis=1)) / np.linalg.norm(gt[45] - gt[36])))
    return {"frames": n, "found": found, "several": several, "errors": errors, **t}


def report(label: str, setting: str, rows: list[dict]) -> None:
    n = sum(r["frames"] for r in rows)
    ms = {k: 1000 * sum(r[k] for r in rows) / n for k in ("decode", "detect", "landmarks", "align")}
    errors = [e for r in rows for e in r["errors"]]
    err = f"{np.mean(errors):.4f}" if errors else "-"
    print(f"{label:<16}{setting:<27}{n:>6}{100 * sum(r['found'] for r in rows) / n:>7.1f}"
          f"{100 * sum(r['several'] for r in rows) / n:>7.1f}{err:>8}{1000 / sum(ms.values()):>10.1f}"
          f"{ms['decode']:>8.2f}{ms['detect']:>8.2f}{ms['landmarks']:>7.2f}{ms['align']:>7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames-360p", type=int, default=900)
    ap.add_argument("--videos", type=int, default=8, help="synthetic corpus videos (the first, sorted by path)")
    ap.add_argument("--synth-root", default="resources/synth")
    ap.add_argument("--decoder", default="decord", choices=["decord", "pyav"])
    ap.add_argument("--memory-minutes", type=float, nargs="*", default=[1.0, 4.0],
                    help="clip lengths for the shard-memory rows (none: skip)")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        clip, two = Path(tmp) / "clip360p.mp4", Path(tmp) / "two_faces.mp4"
        sources: list[tuple[str, list[Path], dict[Path, dict[int, np.ndarray]]]] = []
        root = Path(args.synth_root)
        synth = sorted((root / "voxceleb" / "videos").rglob("*.mp4"))[: args.videos]
        if synth:
            sources.append(("synth 224px", synth, synth_truth(root, synth)))
        else:
            print(f"(no synthetic videos under {root}: run `make demo` first for the 224 px face-track rows)")
        sources.append(("640x360 H.264", [clip], {clip: make_360p_clip(clip, args.frames_360p)}))
        make_two_face_clip(two)
        sources.append(("two faces 224px", [two], {two: {}}))
        landmarker = Landmarker("dlib68")
        detectors = [(label, FaceDetector(max_side=640, **kw)) for label, kw in SETTINGS]
        print(f"{'source':<16}{'detector':<27}{'frames':>6}{'face%':>7}{'>1 %':>7}{'err/IOD':>8}{'fr/s/core':>10}"
              f"{'decode':>8}{'detect':>8}{'lmk':>7}{'align':>7}  (ms per sampled frame)")
        for label, paths, truth in sources:
            rows: dict[str, list[dict]] = {name: [] for name, _ in detectors}
            for p in paths:                       # settings interleaved per video: load drifts hit all alike
                for name, det in detectors:
                    rows[name].append(bench(p, 25 / 6, det, landmarker, args.decoder, truth[p]))
            for name, _ in detectors:
                report(label, name, rows[name])
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
