"""Sequential decoding of sampled frames (no random seeks), from videos (decord, PyAV) or frame folders.

Frames are sampled at ``sample_fps`` (default 25/6, the rate of the VoxCeleb1 face tracks): frame
``round(k · fps / sample_fps)`` for k = 0, 1, …; sources at or below the sampling rate give every frame.
Decoding goes through the file once, in order, converting only the sampled frames. Failures never
raise: a frame that cannot be decoded is yielded with ``None`` and the error, and a stream that breaks
off yields its remaining sampled frames that way.
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
        import cv2

        files = frame_files(source)
        for idx in wanted:
            if idx >= len(files):
                yield int(idx), None, f"{source}: frame {idx} missing"
                continue
            bgr = cv2.imread(str(files[idx]), cv2.IMREAD_COLOR)
            if bgr is None:
                yield int(idx), None, f"{files[idx]}: unreadable JPEG"
            else:
                yield int(idx), np.ascontiguousarray(bgr[..., ::-1]), None
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
