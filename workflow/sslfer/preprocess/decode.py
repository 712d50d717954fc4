"""Sequential decoding of sampled frames (no random seeks), from videos (decord, PyAV) or frame folders.

Frames are sampled at ``sample_fps`` (default 25/6, the rate of the VoxCeleb1 face tracks): frame
``round(k · fps / sample_fps)`` for k = 0, 1, …; sources at or below the sampling rate give every frame.
Decoding goes through the file once, in order, converting only the sampled frames. Failures never
raise: a frame that cannot be decoded is yielded with ``None`` and the error, and a stream that breaks
off yields its remaining sampled frames that way.

Frame folders: OpenCV decodes a truncated JPEG into a partly grey image with only a libjpeg warning on
stderr, which would then pass as a frame without a face. So a JPEG is first checked for its end-of-image
marker after the start of its first scan (:func:`jpeg_is_complete`; the header is walked segment by
segment, so an EXIF thumbnail's own end marker does not count, and trailing bytes after the marker are
allowed); one without it is yielded as ``None`` with ``<file>: truncated JPEG``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .manifest import frame_files

DECODERS = ("decord", "pyav")


def sample_indices(n_frames: int, fps: float, sample_fps: float) -> np.ndarray:
    """Indices of the sampled frames of an ``n_frames`` source at ``fps``."""
    if n_frames <= 0:
        return np.zeros(0, np.int64)
    if fps <= 0 or sample_fps >= fps:
        return np.arange(n_frames, dtype=np.int64)
    step = fps / sample_fps
    idx = np.round(np.arange(0, n_frames / step) * step).astype(np.int64)
    return np.unique(idx[idx < n_frames])


Frame = tuple[int, "np.ndarray | None", "str | None"]


SOI, EOI, SOS = b"\xff\xd8", b"\xff\xd9", 0xDA
#: markers without a length field (TEM, RSTn, SOI, EOI)
_STANDALONE = {0x01, *range(0xD0, 0xDA)}


def jpeg_is_complete(data: bytes) -> bool:
    """False for a JPEG whose data ends before its end-of-image marker (True for non-JPEG data)."""
    if not data.startswith(SOI):
        return True
    i, n = 2, len(data)
    while i + 4 <= n:                      # walk the header segments up to the first scan
        if data[i] != 0xFF:                # stray bytes between segments: skipped, as libjpeg does
            i = data.find(b"\xff", i)
            if i == -1:
                return False
            continue
        marker = data[i + 1]
        if marker == 0xFF:                 # fill byte
            i += 1
        elif marker in _STANDALONE:
            i += 2
        else:
            end = i + 2 + ((data[i + 2] << 8) | data[i + 3])
            if marker == SOS:
                return data.rfind(EOI, end) != -1   # entropy-coded data never holds FFD9 (byte stuffing)
            i = end
    return False


def read_jpeg(path: Path) -> tuple["np.ndarray | None", "str | None"]:
    """``(bgr, None)`` or ``(None, error naming the file)`` for one frame file."""
    import cv2

    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"{path}: unreadable file ({type(exc).__name__}: {exc.strerror or exc})"
    if not jpeg_is_complete(data):
        return None, f"{path}: truncated JPEG (no end-of-image marker; {len(data)} bytes)"
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None:
        return None, f"{path}: unreadable JPEG"
    return bgr, None


def _decord_frames(path: Path, wanted: np.ndarray) -> Iterator[Frame]:
    import decord

    vr = decord.VideoReader(str(path), num_threads=1)
    pos = 0
    for idx in wanted:
        if idx > pos:
            vr.skip_frames(int(idx - pos))
        yield int(idx), vr.next().asnumpy(), None
        pos = int(idx) + 1


def _pyav_frames(path: Path, wanted: np.ndarray) -> Iterator[Frame]:
    import av

    want = set(int(i) for i in wanted)
    last = int(wanted[-1])
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i in want:
                yield i, frame.to_ndarray(format="rgb24"), None
            if i >= last:
                break


def iter_frames(source: str | Path, kind: str, n_frames: int, fps: float, sample_fps: float,
                backend: str = "decord") -> Iterator[Frame]:
    """Yield ``(frame_idx, rgb uint8 or None, error or None)`` for every sampled frame, in order."""
    wanted = sample_indices(n_frames, fps, sample_fps)
    if len(wanted) == 0:
        return
    source = Path(source)
    if kind == "frames":
        files = frame_files(source)
        for idx in wanted:
            if idx >= len(files):
                yield int(idx), None, f"{source}: frame {idx} missing"
                continue
            bgr, err = read_jpeg(files[idx])
            yield int(idx), None if bgr is None else np.ascontiguousarray(bgr[..., ::-1]), err
        return
    if backend not in DECODERS:
        raise ValueError(f"unknown decoder {backend!r} (one of {', '.join(DECODERS)})")
    gen = _decord_frames(source, wanted) if backend == "decord" else _pyav_frames(source, wanted)
    done = -1
    try:
        for item in gen:
            done = item[0]
            yield item
    except Exception as exc:  # noqa: BLE001 - a broken stream ends the video, recorded per frame
        err = f"{source}: decoding stopped after frame {done}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        for idx in wanted[wanted > done]:
            yield int(idx), None, err
        return
    for idx in wanted[wanted > done]:   # the stream ended early (fewer frames than the header said)
        yield int(idx), None, f"{source}: stream ended before frame {idx}"
