"""Facial expressions of the synthetic corpus: action parameters, class prototypes, valence/arousal.

An expression is a vector of *action parameters* (loosely FACS action units, see ``ACTIONS``), each in
[0, 1]. Each of the 8 AffectNet classes has a prototype vector; a rendered expression is
``intensity * prototype`` (plus speech-driven mouth motion in videos).

Valence/arousal follow a circumplex table (``CIRCUMPLEX``), placed after the circumplex model of
affect (each class at its usual valence/arousal quadrant), scaled by the
expression intensity, plus small Gaussian noise (``VA_NOISE_STD``) and clipped to [-1, 1]:

=========  ========  ========
class      valence   arousal
=========  ========  ========
neutral      0.00      0.00
happy        0.75      0.45
sad         -0.65     -0.35
surprise     0.20      0.80
fear        -0.60      0.70
disgust     -0.65      0.35
anger       -0.60      0.75
contempt    -0.45      0.30
=========  ========  ========
"""

from __future__ import annotations

import numpy as np

#: AffectNet class order: the index is the AffectNet ``expression`` code.
CLASSES: tuple[str, ...] = (
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
)

#: FER2013's class order (``emotion`` column) and the mapping from our class names.
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_FROM_CLASS: dict[str, int] = {
    "anger": 0, "disgust": 1, "fear": 2, "happy": 3, "sad": 4, "surprise": 5, "neutral": 6,
}

#: Action parameters. ``_l``/``_r`` are the subject's left/right (image right/left in a frontal view).
ACTIONS: tuple[str, ...] = (
    "brow_inner_up",       # AU1
    "brow_outer_up",       # AU2
    "brow_lower",          # AU4 (lowered and knitted)
    "upper_lid_up",        # AU5 (eyes wide)
    "lid_tighten",         # AU6/7 (narrowed eyes, raised lower lid)
    "nose_wrinkle",        # AU9
    "upper_lip_raise",     # AU10
    "lip_corner_pull_l",   # AU12 on the subject's left
    "lip_corner_pull_r",   # AU12 on the subject's right
    "lip_corner_depress",  # AU15
    "lip_stretch",         # AU20
    "lip_press",           # AU23/24
    "lips_part",           # AU25
    "jaw_drop",            # AU26/27
)
ACTION_INDEX: dict[str, int] = {name: i for i, name in enumerate(ACTIONS)}

_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"lip_corner_pull_l": 1.0, "lip_corner_pull_r": 1.0, "lid_tighten": 0.6,
              "lips_part": 0.6, "jaw_drop": 0.15},
    "sad": {"brow_inner_up": 1.0, "brow_lower": 0.35, "lip_corner_depress": 1.0,
            "lid_tighten": 0.2},
    "surprise": {"brow_inner_up": 1.0, "brow_outer_up": 1.0, "upper_lid_up": 1.0,
                 "lips_part": 1.0, "jaw_drop": 0.9},
    "fear": {"brow_inner_up": 1.0, "brow_outer_up": 0.4, "brow_lower": 0.5, "upper_lid_up": 0.9,
             "lip_stretch": 1.0, "lips_part": 0.8, "jaw_drop": 0.3},
    "disgust": {"nose_wrinkle": 1.0, "upper_lip_raise": 1.0, "brow_lower": 0.6,
                "lid_tighten": 0.5, "lip_corner_depress": 0.4, "lips_part": 0.3},
    "anger": {"brow_lower": 1.0, "upper_lid_up": 0.4, "lid_tighten": 0.5, "lip_press": 1.0},
    # contempt is asymmetric: one lip corner tightened and raised (AU14/12 unilateral)
    "contempt": {"lip_corner_pull_l": 0.9, "lid_tighten": 0.15},
}

#: (n_classes, n_actions) prototype matrix, row = class in ``CLASSES`` order.
PROTOTYPES: np.ndarray = np.zeros((len(CLASSES), len(ACTIONS)), dtype=np.float64)
for _c, _name in enumerate(CLASSES):
    for _action, _value in _PROTOTYPES[_name].items():
        PROTOTYPES[_c, ACTION_INDEX[_action]] = _value

#: Circumplex (valence, arousal) of each class at full intensity (see the module docstring).
CIRCUMPLEX: np.ndarray = np.array([
    [0.00, 0.00], [0.75, 0.45], [-0.65, -0.35], [0.20, 0.80],
    [-0.60, 0.70], [-0.65, 0.35], [-0.60, 0.75], [-0.45, 0.30],
])
VA_NOISE_STD = 0.05


def expression_vector(class_idx: int, intensity: float) -> np.ndarray:
    """Action-parameter vector of class ``class_idx`` at ``intensity`` in [0, 1]."""
    return PROTOTYPES[class_idx] * float(intensity)


def valence_arousal(class_idx: int, intensity: float, rng: np.random.Generator) -> tuple[float, float]:
    """Valence and arousal for a class at an intensity: circumplex × intensity + noise, in [-1, 1]."""
    va = CIRCUMPLEX[class_idx] * float(intensity) + rng.normal(0.0, VA_NOISE_STD, size=2)
    va = np.clip(va, -1.0, 1.0)
    return float(va[0]), float(va[1])
