"""The manifest of a pretraining corpus: one row per video or face track, probed and assigned to shards.

Inputs (config ``corpora.<name>.format``):

- ``video_tree``: ``<path>/idNNNNN/<clip>/<utt>.mp4`` (VoxCeleb2 / re-downloaded VoxCeleb1 layout);
  identity = the ``id`` folder.
- ``frame_tree``: VoxCeleb1 ``unzippedIntervalFaces/data/<Name>/1.6/<youtube_id>/<track>/<n>.jpg``; one
  track folder = one face track at 25/6 fps; identity = the VoxCeleb1 id of ``<Name>`` from
  ``vox1_meta.csv`` (tab-separated) when given, else the name itself. Frame files are sorted by their
  integer stem, never lexically; a track's ``n_frames`` counts its JPEGs (``.jpg``/``.jpeg``, any case).
- ``csv``: a file with a header row naming the columns ``path`` and ``identity`` (others are ignored);
  paths relative to the CSV's folder or absolute. A wrong header or malformed rows are config errors
  (:func:`read_csv_listing`; :func:`sslfer.config.prepare_config` reports them before any job starts).

Probing never raises: a listed file that does not exist becomes a row with status ``missing_file``, an
unreadable or empty video one with ``status`` and ``error``. Sources are probed on ``workers`` threads with
a progress bar (stderr: the rule log); rows are sorted by ``video_id`` and cut into shards of
``shard_size`` rows, whatever the number of workers.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import pyarrow as pa
from tqdm import tqdm

log = logging.getLogger(__name__)

#: VoxCeleb1's dense face tracks are every 6th frame of 25 fps video.
FRAME_TREE_FPS = 25.0 / 6.0
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
FRAME_SUFFIXES = (".jpg", ".jpeg")
CSV_COLUMNS = ("path", "identity")

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


def is_frame_file(name: str) -> bool:
    """A frame-tree JPEG by its name: ``.jpg`` or ``.jpeg``, any case."""
    return name.lower().endswith(FRAME_SUFFIXES)


def frame_files(folder: Path) -> list[Path]:
    """The JPEGs of a track folder in numeric order of their stems (non-numeric stems last, by name)."""
    files = [p for p in folder.iterdir() if is_frame_file(p.name) and p.is_file()]
    return sorted(files, key=lambda p: (0, int(p.stem), p.name) if p.stem.isdigit() else (1, 0, p.name))


def frame_folders(root: Path) -> set[Path]:
    """Every folder under ``root`` that holds a frame JPEG. Symlinked folders are followed (datasets are often
    assembled from links), each real folder once: a link back up the tree is not a second copy of it."""
    found, seen = set(), set()
    for d, subdirs, files in os.walk(root, followlinks=True):
        st = os.stat(d)
        if (st.st_dev, st.st_ino) in seen:
            subdirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        if any(is_frame_file(f) for f in files):
            found.add(Path(d))
    return found


@dataclass
class CsvListing:
    """A ``csv`` corpus listing: its data rows and what is wrong with its structure."""

    path: Path
    rows: list[tuple[int, str, str]] = field(default_factory=list)   # (line number, path, identity)
    header_error: str | None = None
    malformed: list[int] = field(default_factory=list)              # line numbers of malformed rows

    def resolve(self, listed: str) -> Path:
        """A listed path: absolute as given, else relative to the CSV's folder."""
        src = Path(listed)
        return src if src.is_absolute() else self.path.parent / src

    def problems(self, shown: int = 5) -> list[str]:
        """One message per structural problem (empty list when the listing is usable)."""
        if self.header_error:
            return [self.header_error]
        if self.malformed:
            lines = ", ".join(str(n) for n in self.malformed[:shown]) + (", …" if len(self.malformed) > shown else "")
            return [f"{self.path}: {len(self.malformed)} malformed row(s) (line {lines}): each row needs "
                    f"a non-empty path and identity and as many fields as the header"]
        return []


def read_csv_listing(path: str | Path) -> CsvListing:
    """Parse a ``csv`` corpus listing (UTF-8, BOM tolerated; blank lines skipped), never raising on content."""
    out = CsvListing(Path(path))
    with open(out.path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        lacking = [c for c in CSV_COLUMNS if c not in header]
        if lacking:
            out.header_error = (f"{out.path} line 1: header {','.join(header) or '(empty file)'} lacks "
                                f"{', '.join(lacking)} (the first row must name the columns: path,identity)")
            return out
        cp, ci = header.index("path"), header.index("identity")
        for rec in reader:
            if not rec:
                continue
            if len(rec) != len(header) or not rec[cp].strip() or not rec[ci].strip():
                out.malformed.append(reader.line_num)
            else:
                out.rows.append((reader.line_num, rec[cp].strip(), rec[ci].strip()))
    return out


def missing_listed(listing: CsvListing, workers: int = 8) -> list[tuple[int, str]]:
    """(line, path) of every listed file that does not exist (checked on ``workers`` threads)."""
    folder = str(listing.path.parent)        # plain strings: pathlib costs more than the stat itself
    paths = [p if os.path.isabs(p) else os.path.join(folder, p) for _, p, _ in listing.rows]
    batches = [paths[i:i + 1024] for i in range(0, len(paths), 1024)]
    exists = [ok for batch in ordered_map(lambda b: [os.path.exists(p) for p in b], batches, workers) for ok in batch]
    return [(line, p) for (line, _, _), p, ok in zip(listing.rows, paths, exists) if not ok]


def probe_video(path: Path) -> Probe:
    """Frames, fps and size of a video from its container header (no decoding of the whole file)."""
    try:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return Probe(status="missing_file", error=f"{path}: file not found")
        if size == 0:
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


def read_meta(meta: Path | None) -> dict[str, str]:
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
        names = read_meta(meta)
        for folder in frame_folders(path):
            rel = folder.relative_to(path)
            name = rel.parts[0]
            items.append((rel.as_posix(), names.get(name, name), folder, "frames"))
    elif fmt == "csv":
        listing = read_csv_listing(path)
        if listing.problems():
            raise ValueError("; ".join(listing.problems()))
        for i, (_, listed, identity) in enumerate(listing.rows):
            src = listing.resolve(listed)
            items.append((f"{i:08d}/{src.stem}", identity, src, "video"))
    else:
        raise ValueError(f"unknown corpus format {fmt!r} (video_tree, frame_tree, csv)")
    return sorted(items)


def _probe(source: tuple[str, str, Path, str]) -> Probe:
    return probe_video(source[2]) if source[3] == "video" else probe_frame_folder(source[2])


def ordered_map(fn: Callable, items: Iterable, workers: int, window: int = 64) -> Iterator:
    """``map(fn, items)`` on ``workers`` threads, results in input order, at most ``window × workers``
    items in flight (memory stays bounded for a million-video corpus)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def build_manifest(fmt: str, path: str | Path, meta: str | Path | None, shard_size: int,
                   min_duration_s: float = 0.0, workers: int = 1) -> pa.Table:
    """Probe every source on ``workers`` threads and assign shards. ``min_duration_s``: shorter tracks get
    status ``too_short`` (kept and processed, but flagged: they cannot give a HardNeg pair). The table is
    the same for any ``workers``."""
    sources = list_sources(fmt, Path(path), Path(meta) if meta else None)
    probes = []
    with tqdm(total=len(sources), desc="manifest probe", mininterval=5.0, unit="source") as bar:
        for pr in ordered_map(_probe, sources, workers):
            probes.append(pr)
            bar.update()
    rows = []
    for i, ((vid, ident, src, kind), pr) in enumerate(zip(sources, probes)):
        if pr.status == "ok" and pr.duration_s < min_duration_s:
            pr.status, pr.error = "too_short", f"{vid}: {pr.duration_s:.2f} s < {min_duration_s:.2f} s"
        if pr.error:
            log.warning("%s: %s", pr.status, pr.error)
        rows.append({"video_id": vid, "identity": ident, "source_path": str(src), "kind": kind,
                     "n_frames": pr.n_frames, "fps": pr.fps, "width": pr.width, "height": pr.height,
                     "duration_s": pr.duration_s, "shard": i // shard_size, "status": pr.status, "error": pr.error})
    return pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
