"""Parametric identities of the synthetic corpus.

An :class:`Identity` fixes everything about a person that does not change between frames: face shape
(width/height/jaw), feature geometry (eye size and spacing, brows, nose, lips), colours (skin, hair, iris,
lips), hair style, glasses and beard. Identities are drawn from a seeded generator keyed by an integer
identity number, so identity ``k`` is the same person in every dataset and every run with the same seed;
pretraining and evaluation sets draw from disjoint number ranges (see :mod:`sslfer.synth.corpus`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

HAIR_STYLES: tuple[str, ...] = ("short", "long", "bald", "fringe", "curly", "bun")

# Skin tones from light to dark (RGB, 0..1), interpolated continuously.
_SKIN_TONES = np.array([
    [0.98, 0.84, 0.74], [0.93, 0.76, 0.63], [0.85, 0.65, 0.50], [0.72, 0.52, 0.38],
    [0.55, 0.38, 0.26], [0.38, 0.25, 0.17],
])
_HAIR_COLOURS = np.array([
    [0.08, 0.06, 0.05], [0.22, 0.14, 0.08], [0.42, 0.26, 0.13], [0.62, 0.42, 0.22],
    [0.85, 0.70, 0.45], [0.55, 0.22, 0.10], [0.62, 0.62, 0.62], [0.90, 0.90, 0.88],
])
_IRIS_COLOURS = np.array([
    [0.25, 0.15, 0.08], [0.40, 0.26, 0.12], [0.30, 0.45, 0.60], [0.35, 0.50, 0.32], [0.45, 0.45, 0.45],
])


@dataclass(frozen=True)
class Identity:
    """One synthetic person. Lengths are in face units (half face width = 1, eye line at y = 0)."""

    number: int
    name: str
    # face shape
    face_height: float      # chin y
    jaw_top: float          # y of landmarks 0/16
    jaw_exponent: float     # superellipse exponent of the jaw (higher = squarer)
    forehead_height: float  # skull top above the eye line
    # features
    eye_spacing: float      # half inter-ocular distance
    eye_width: float
    eye_height: float
    eye_tilt: float         # outer corner raised by this much
    brow_height: float
    brow_arch: float
    brow_length: float
    brow_thickness: float
    nose_length: float      # y of the nose tip (landmark 30)
    nose_width: float       # half width of the nostril base (landmarks 31/35)
    mouth_y: float
    mouth_width: float      # half width, corner to centre
    upper_lip: float
    lower_lip: float
    # appearance (RGB in 0..1)
    skin: tuple[float, float, float]
    lip_colour: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    hair_style: str
    hairline: float         # y of the hairline (negative: above the eye line)
    glasses: bool
    beard: bool
    beard_density: float

    def as_dict(self) -> dict:
        """Plain-dict form (for Parquet/JSON ground truth)."""
        return asdict(self)


_SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "to", "vi", "dan", "el", "or", "ta", "nu", "be", "ri",
              "sol", "mar", "fen", "ga", "li", "po", "zu", "hal", "ne", "ky")


def identity_name(number: int) -> str:
    """A unique, LFW-style ``First_Last`` name for identity ``number`` (deterministic, no seed)."""
    n = len(_SYLLABLES)
    a, b, c = number % n, (number // n) % n, (number // (n * n)) % n
    first = (_SYLLABLES[a] + _SYLLABLES[(a + 7 * b + 3) % n]).capitalize()
    last = (_SYLLABLES[b] + _SYLLABLES[c] + _SYLLABLES[(a + b + c) % n]).capitalize()
    return f"{first}_{last}{number:04d}"


def _mix(palette: np.ndarray, rng: np.random.Generator, jitter: float) -> tuple[float, float, float]:
    t = rng.uniform(0, len(palette) - 1)
    i = int(np.floor(t))
    j = min(i + 1, len(palette) - 1)
    colour = palette[i] * (1 - (t - i)) + palette[j] * (t - i)
    colour = np.clip(colour + rng.normal(0, jitter, 3), 0.02, 0.98)
    return tuple(float(v) for v in colour)


def sample_identity(number: int, seed: int) -> Identity:
    """Draw identity ``number`` from the generator seeded by ``(seed, number)``."""
    rng = np.random.default_rng([seed, 7919, number])
    u = rng.uniform
    skin = _mix(_SKIN_TONES, rng, 0.02)
    lip = tuple(float(v) for v in np.clip(np.array(skin) * np.array([0.85, 0.55, 0.55])
                                          + rng.normal(0, 0.03, 3), 0, 1))
    style = HAIR_STYLES[int(rng.integers(len(HAIR_STYLES)))]
    glasses = bool(rng.uniform() < 0.2)
    beard = bool(rng.uniform() < 0.18)
    return Identity(
        number=number,
        name=identity_name(number),
        face_height=u(1.45, 1.72),
        jaw_top=u(0.0, 0.12),
        jaw_exponent=u(1.9, 3.2),
        forehead_height=u(1.45, 1.75),
        eye_spacing=u(0.42, 0.50),
        eye_width=u(0.32, 0.40),
        eye_height=u(0.10, 0.14),
        eye_tilt=u(-0.02, 0.05),
        brow_height=u(0.24, 0.32),
        brow_arch=u(0.03, 0.08),
        brow_length=u(0.58, 0.72),
        brow_thickness=u(0.055, 0.09),
        nose_length=u(0.44, 0.56),
        nose_width=u(0.17, 0.24),
        mouth_y=u(0.88, 0.98),
        mouth_width=u(0.34, 0.43),
        upper_lip=u(0.06, 0.10),
        lower_lip=u(0.08, 0.13),
        skin=skin,
        lip_colour=lip,  # type: ignore[arg-type]
        hair=_mix(_HAIR_COLOURS, rng, 0.03),
        iris=_mix(_IRIS_COLOURS, rng, 0.03),
        hair_style=style,
        hairline=u(-0.95, -0.62),
        glasses=glasses,
        beard=beard,
        beard_density=u(0.35, 0.7) if beard else 0.0,
    )
