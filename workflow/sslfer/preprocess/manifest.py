"""The manifest of a pretraining corpus: one row per video or face track, probed and assigned to shards.

Inputs (config ``corpora.<name>.format``):

- ``video_tree``: ``<path>/idNNNNN/<clip>/<utt>.mp4`` (VoxCeleb2 / re-downloaded VoxCeleb1 layout);
  identity = the ``id`` folder.
- ``frame_tree``: VoxCeleb1 ``unzippedIntervalFaces/data/<Name>/1.6/<youtube_id>/<track>/<n>.jpg``; one
  track folder = one face track at 25/6 fps; identity = the VoxCeleb1 id of ``<Name>`` from
  ``vox1_meta.csv`` (tab-separated) when given, else the name itself. Frame files are sorted by their
  integer stem, never lexically; a track's ``n_frames`` counts its JPEGs.
- ``csv``: a file with columns ``path,identity`` (paths relative to the CSV's folder or absolute).

Probing never raises: an unreadable or empty video becomes a row with ``status`` and ``error``.
Rows are sorted by ``video_id`` and cut into shards of ``shard_size`` rows.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import pyarrow as pa

log = logging.getLogger(__name__)

#: VoxCeleb1's dense face tracks are every 6th frame of 25 fps video.
FRAME_TREE_FPS = 25.0 / 6.0
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")

MANIFEST_SCHEMA = pa.schema([
    ("video_id", pa.string()), ("identity", pa.string()), ("source_path", pa.string()), ("kind", pa.string()),
    ("n_frames", pa.int64()), ("fps", pa.float64()), ("width", pa.int32()), ("height", pa.int32()),
    ("duration_s", pa.float64()), ("shard", pa.int32()), ("status", pa.string()), ("error", pa.string()),
])


@dataclass
class Probe:
    """What probing a video or a frame folder found."""

    n_frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    status: str = "ok"
    error: str | None = None

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def frame_files(folder: Path) -> list[Path]:
    """The JPEGs of a track folder in numeric order of their stems (non-numeric stems last, by name)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file()]
    return sorted(files, key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.name))


def probe_video(path: Path) -> Probe:
    """Frames, fps and size of a video from its container header (no decoding of the whole file)."""
    try:
        if path.stat().st_size == 0:
            return Probe(status="empty_file", error=f"{path}: zero-byte file")
        with av.open(str(path)) as container:
            if not container.streams.video:
                return Probe(status="no_video_stream", error=f"{path}: no video stream")
            s = container.streams.video[0]
            fps = float(s.average_rate or s.guessed_rate or 0)
            n = int(s.frames or 0)
            if n == 0 and s.duration and s.time_base:
                n = int(round(float(s.duration * s.time_base) * fps))
            if n == 0 and container.duration:
                n = int(round(container.duration / 1e6 * fps))
            if n == 0 or fps <= 0:
                return Probe(fps=fps, width=s.width, height=s.height, status="empty_video",
                             error=f"{path}: no frames")
            return Probe(n, fps, int(s.width), int(s.height))
    except Exception as exc:  # noqa: BLE001 - any container failure is recorded, not raised
        return Probe(status="probe_error", error=f"{path}: {type(exc).__name__}: {exc}")


def probe_frame_folder(folder: Path) -> Probe:
    """Frame count of a track folder and the size of its first readable JPEG."""
    files = frame_files(folder)
    if not files:
        return Probe(fps=FRAME_TREE_FPS, status="empty_video", error=f"{folder}: no JPEG frames")
    for f in files[:5]:
        img = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if img is not None:
            return Probe(len(files), FRAME_TREE_FPS, int(img.shape[1]), int(img.shape[0]))
    return Probe(len(files), FRAME_TREE_FPS, status="probe_error", error=f"{folder}: first frames unreadable")


def _read_meta(meta: Path | None) -> dict[str, str]:
    """VGGFace1 name → VoxCeleb1 id from a tab-separated ``vox1_meta.csv`` (header row tolerated)."""
    if meta is None:
        return {}
    out = {}
    with open(meta, newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) >= 2 and row[0].strip().startswith("id") and row[0].strip()[2:].isdigit():
                out[row[1].strip()] = row[0].strip()
    return out


def list_sources(fmt: str, path: Path, meta: Path | None = None) -> list[tuple[str, str, Path, str]]:
    """(video_id, identity, source path, kind) for every video or track of the corpus, sorted by id."""
    items: list[tuple[str, str, Path, str]] = []
    if fmt == "video_tree":
        for p in path.rglob("*"):
            if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file():
                rel = p.relative_to(path).with_suffix("")
                items.append((rel.as_posix(), rel.parts[0], p, "video"))
    elif fmt == "frame_tree":
        names = _read_meta(meta)
        folders = {f.parent for f in path.rglob("*.jpg")}
        for folder in folders:
            rel = folder.relative_to(path)
            name = rel.parts[0]
            items.append((rel.as_posix(), names.get(name, name), folder, "frames"))
    elif fmt == "csv":
        with open(path, newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                src = Path(row["path"])
                src = src if src.is_absolute() else path.parent / src
                items.append((f"{i:08d}/{src.stem}", row["identity"], src, "video"))
    else:
        raise ValueError(f"unknown corpus format {fmt!r} (video_tree, frame_tree, csv)")
    return sorted(items)


def build_manifest(fmt: str, path: str | Path, meta: str | Path | None, shard_size: int,
                   min_duration_s: float = 0.0) -> pa.Table:
    """Probe every source and assign shards. ``min_duration_s``: shorter tracks get status ``too_short``
    (kept and processed, but flagged: they cannot give a HardNeg pair)."""
    rows = []
    for i, (vid, ident, src, kind) in enumerate(list_sources(fmt, Path(path), Path(meta) if meta else None)):
        pr = probe_video(src) if kind == "video" else probe_frame_folder(src)
        if pr.status == "ok" and pr.duration_s < min_duration_s:
            pr.status, pr.error = "too_short", f"{vid}: {pr.duration_s:.2f} s < {min_duration_s:.2f} s"
        if pr.error:
            log.warning("%s: %s", pr.status, pr.error)
        rows.append({"video_id": vid, "identity": ident, "source_path": str(src), "kind": kind,
                     "n_frames": pr.n_frames, "fps": pr.fps, "width": pr.width, "height": pr.height,
                     "duration_s": pr.duration_s, "shard": i // shard_size, "status": pr.status, "error": pr.error})
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
