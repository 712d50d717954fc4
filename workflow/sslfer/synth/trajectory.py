"""Time courses for synthetic talking-face videos: expression segments, speech, head pose, drift.

All functions return per-frame arrays for ``n`` frames at ``fps`` and draw from the given generator only,
so a video is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .expression import CIRCUMPLEX, PROTOTYPES, VA_NOISE_STD

#: An expression counts as shown (frame label = its class) from this intensity on; below it, neutral.
LABEL_THRESHOLD = 0.25

#: [min, max] seconds an expression episode holds at its peak (``synth.videos.expression_hold_s``).
DEFAULT_HOLD_S = (2.0, 4.0)


@dataclass
class ExpressionTrack:
    """Per-frame expression ground truth of one video."""

    class_idx: np.ndarray   # (n,) int, AffectNet code of the frame's label
    intensity: np.ndarray   # (n,) float in [0, 1] (0 for neutral frames)
    valence: np.ndarray     # (n,)
    arousal: np.ndarray     # (n,)
    actions: np.ndarray     # (n, n_actions), expression only (speech added separately)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def expression_track(n: int, fps: float, rng: np.random.Generator,
                     hold_s: tuple[float, float] = DEFAULT_HOLD_S) -> ExpressionTrack:
    """A smooth sequence of expression episodes (onset, hold for ``hold_s`` s, offset) separated by neutral gaps.

    Episodes cycle through randomly ordered non-neutral classes (no immediate repeats), so a clip of
    several seconds shows several classes. The hold sets how often frames a short time apart share
    their class, the premise of TimeAug (``synth.videos.expression_hold_s``). Valence/arousal follow the
    circumplex × intensity plus a small noise held per episode (so they are smooth within an episode).
    """
    t = np.arange(n) / fps
    level = np.zeros(n)
    cls = np.zeros(n, dtype=np.int64)
    va_off = np.zeros((n, 2))
    now = rng.uniform(0.0, 0.6)
    prev = -1
    while n and now < t[-1]:
        c = int(rng.integers(1, len(PROTOTYPES)))
        if c == prev:
            c = 1 + (c % (len(PROTOTYPES) - 1))
        prev = c
        onset, hold, offset = rng.uniform(0.3, 0.6), rng.uniform(*hold_s), rng.uniform(0.3, 0.6)
        peak = rng.uniform(0.5, 1.0)
        env = _smoothstep((t - now) / onset) * (1 - _smoothstep((t - now - onset - hold) / offset))
        env *= peak
        take = env > level
        level = np.where(take, env, level)
        cls = np.where(take, c, cls)
        va_off[take] = rng.normal(0.0, VA_NOISE_STD, 2)
        now += onset + hold + offset + rng.uniform(0.3, 1.2)
    shown = level >= LABEL_THRESHOLD
    label = np.where(shown, cls, 0)
    intensity = np.where(shown, level, 0.0)
    actions = PROTOTYPES[cls] * level[:, None]
    va = CIRCUMPLEX[label] * intensity[:, None] + va_off
    va = np.clip(va, -1.0, 1.0)
    return ExpressionTrack(label, intensity, va[:, 0], va[:, 1], actions)


def speech(n: int, fps: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like mouth motion: (jaw_drop, lips_part) increments, syllables at ~3.5–5.5 Hz in phrases."""
    t = np.arange(n) / fps
    rate = rng.uniform(3.5, 5.5)
    # syllable phase with jitter, amplitude varying per syllable, phrases separated by pauses
    phase = 2 * np.pi * rate * t + np.cumsum(rng.normal(0, 0.15, n))
    syl = 0.5 - 0.5 * np.cos(phase)
    syllable = np.floor(t * rate).astype(np.int64)
    amp = rng.uniform(0.3, 1.0, int(syllable.max(initial=0)) + 1)[syllable]
    talk = np.zeros(n)
    now = rng.uniform(0, 0.5)
    while n and now < t[-1]:
        length = rng.uniform(0.8, 2.5)
        talk = np.maximum(talk, _smoothstep((t - now) / 0.15) * (1 - _smoothstep((t - now - length) / 0.15)))
        now += length + rng.uniform(0.2, 0.8)
    jaw = 0.28 * syl * amp * talk
    lips = 0.5 * talk * (0.4 + 0.6 * syl)
    return jaw, lips


def drift(n: int, fps: float, rng: np.random.Generator, centre: float, amplitude: float,
          period: tuple[float, float] = (3.0, 9.0)) -> np.ndarray:
    """Slow smooth drift: ``centre`` + a sum of two low-frequency sinusoids of total ``amplitude``."""
    t = np.arange(n) / fps
    out = np.full(n, float(centre))
    for share in (0.65, 0.35):
        p = rng.uniform(*period)
        out += share * amplitude * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi))
    return out
