"""VoxCeleb-style talking-face videos: ``<root>/idNNNNN/<clip>/<utt>.mp4`` (H.264, 25 fps) + meta CSV.

Each video is one face track of one identity: a smooth expression trajectory through several classes,
speech-like mouth motion, slow head-pose/scale/position/lighting drift and sensor noise. Each video is a pure
function of ``(seed, video index)``, so videos can be rendered in any order by any number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .expression import ACTION_INDEX, CLASSES
from .geometry import Pose
from .identity import Identity, sample_identity
from .render import Camera, Lighting, make_background, render_face
from .scenes import VIDEO_224, random_camera, random_lighting, random_shirt
from .trajectory import DEFAULT_HOLD_S, drift, expression_track, speech
from ..files import atomic_path

#: VoxCeleb1 speaker ids start at id10001.
FIRST_VOXCELEB_ID = 10001
_CLIP_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


@dataclass(frozen=True)
class VideoSpec:
    """What to render for one video; ``index`` seeds it."""

    index: int
    identity_number: int
    speaker_id: str      # idNNNNN
    clip_id: str         # 11-character YouTube-style id
    utterance: str       # 00001
    n_frames: int

    @property
    def video_id(self) -> str:
        """``idNNNNN/<clip>/<utt>``, the id used in every artifact."""
        return f"{self.speaker_id}/{self.clip_id}/{self.utterance}"

    @property
    def relpath(self) -> str:
        """Path of the mp4 relative to the video root."""
        return f"{self.video_id}.mp4"


def plan_videos(n_identities: int, clips_per_identity: int, utterances_per_clip: int,
                duration_s: tuple[float, float], fps: int, seed: int) -> list[VideoSpec]:
    """The list of videos of the pretraining corpus (identities numbered 0 … n_identities-1)."""
    rng = np.random.default_rng([seed, 1, 0])
    specs: list[VideoSpec] = []
    for ident in range(n_identities):
        speaker = f"id{FIRST_VOXCELEB_ID + ident:05d}"
        for _clip in range(clips_per_identity):
            clip_id = "".join(rng.choice(_CLIP_ALPHABET, 11))
            for utt in range(utterances_per_clip):
                n = int(round(rng.uniform(*duration_s) * fps))
                specs.append(VideoSpec(len(specs), ident, speaker, clip_id, f"{utt + 1:05d}", n))
    return specs


def _yuv420_frame(rgb: np.ndarray) -> av.VideoFrame:
    """An I420 frame that owns its pixels (copied plane by plane into buffers allocated by libav)."""
    h, w = rgb.shape[:2]
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).ravel()
    frame = av.VideoFrame(w, h, "yuv420p")
    sizes = [(h, w), (h // 2, w // 2), (h // 2, w // 2)]
    offset = 0
    for plane, (ph, pw) in zip(frame.planes, sizes):
        data = yuv[offset:offset + ph * pw].reshape(ph, pw)
        offset += ph * pw
        dst = np.frombuffer(plane, np.uint8).reshape(ph, plane.line_size)
        dst[:, :pw] = data
        dst[:, pw:] = data[:, -1:]          # defined padding, not whatever the allocator left there
    return frame


def encode_h264(frames, path: str | os.PathLike, fps: int, size: tuple[int, int], crf: int = 20) -> None:
    """Encode an iterable of RGB uint8 frames to an H.264 mp4 (yuv420p), reproducibly.

    x264 runs single-threaded and without macroblock-tree rate control (``mbtree=0``): with mbtree on,
    identical frames can give different bytes from run to run in one process. Timestamps are set explicitly.
    """
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.height, stream.width = size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                              "x264-params": "mbtree=0"}
            stream.codec_context.time_base = Fraction(1, fps)
            for i, img in enumerate(frames):
                frame = _yuv420_frame(img)
                frame.pts, frame.time_base = i, Fraction(1, fps)   # explicit timestamps: reproducible bytes
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def render_video(spec: VideoSpec, ident: Identity, fps: int, seed: int, out_path: str | os.PathLike,
                 hold_s: tuple[float, float] = DEFAULT_HOLD_S) -> dict:
    """Render and encode one video (expression episodes holding ``hold_s`` s); return its per-frame ground
    truth as a dict of arrays."""
    rng = np.random.default_rng([seed, 2, spec.index])
    n = spec.n_frames
    size = VIDEO_224.size
    track = expression_track(n, fps, rng, hold_s)
    jaw, lips = speech(n, fps, rng)
    actions = track.actions.copy()
    actions[:, ACTION_INDEX["jaw_drop"]] = np.clip(actions[:, ACTION_INDEX["jaw_drop"]] + jaw, 0, 1)
    actions[:, ACTION_INDEX["lips_part"]] = np.clip(actions[:, ACTION_INDEX["lips_part"]] + lips, 0, 1)

    base_cam = random_camera(VIDEO_224, rng)
    base_light = random_lighting(rng)
    background = make_background(size, rng)
    shirt = random_shirt(rng)
    yaw = drift(n, fps, rng, rng.uniform(-8, 8), rng.uniform(2, 7))
    pitch = drift(n, fps, rng, rng.uniform(-4, 4), rng.uniform(1, 4))
    roll = drift(n, fps, rng, rng.uniform(-3, 3), rng.uniform(1, 3))
    zoom = drift(n, fps, rng, 1.0, rng.uniform(0.01, 0.06))
    dx = drift(n, fps, rng, 0.0, rng.uniform(1, 5))
    dy = drift(n, fps, rng, 0.0, rng.uniform(1, 4))
    exposure = drift(n, fps, rng, base_light.exposure, rng.uniform(0.0, 0.06), period=(4.0, 12.0))
    angle = drift(n, fps, rng, base_light.angle, rng.uniform(0.0, 0.4), period=(4.0, 12.0))
    gaze_x = drift(n, fps, rng, 0.0, 0.6, period=(1.0, 4.0))
    gaze_y = drift(n, fps, rng, 0.0, 0.3, period=(1.0, 4.0))
    landmarks = np.zeros((n, 68, 2), np.float32)

    def frames():
        for i in range(n):
            cam = Camera(size, (base_cam.centre[0] + dx[i], base_cam.centre[1] + dy[i]), base_cam.scale * zoom[i],
                         base_cam.noise_std, base_cam.blur_sigma)
            light = Lighting(float(angle[i]), base_light.strength, float(exposure[i]), base_light.tint)
            img, lm = render_face(ident, actions[i], Pose(yaw[i], pitch[i], roll[i]), cam, light, background, rng,
                                  gaze=(gaze_x[i], gaze_y[i]), shirt=shirt)
            landmarks[i] = lm
            yield img

    encode_h264(frames(), out_path, fps, size)
    return {
        "video_id": np.full(n, spec.video_id, dtype=object),
        "identity": np.full(n, spec.speaker_id, dtype=object),
        "identity_number": np.full(n, spec.identity_number, dtype=np.int64),
        "frame_idx": np.arange(n, dtype=np.int64),
        "t_s": np.arange(n, dtype=np.float64) / fps,
        "expression": track.class_idx.astype(np.int64),
        "expression_name": np.array(CLASSES, dtype=object)[track.class_idx],
        "intensity": track.intensity.astype(np.float32),
        "valence": track.valence.astype(np.float32),
        "arousal": track.arousal.astype(np.float32),
        "yaw": yaw.astype(np.float32), "pitch": pitch.astype(np.float32), "roll": roll.astype(np.float32),
        "landmarks": landmarks,
    }


def render_video_task(args: tuple[VideoSpec, int, int, str, tuple[float, float]]) -> dict:
    """Picklable worker entry: ``(spec, fps, seed, root, hold_s)`` → ground truth of the rendered video."""
    spec, fps, seed, root, hold_s = args
    ident = sample_identity(spec.identity_number, seed)
    return render_video(spec, ident, fps, seed, Path(root) / spec.relpath, hold_s)
