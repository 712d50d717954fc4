"""3-D face geometry: the 68 iBUG landmarks of an identity under an expression, and their projection.

Face units: half face width = 1, x to the image right, y down, eye line at y = 0, z towards the camera.
The landmarks are built from the identity's shape parameters, deformed by the expression's action
parameters (:mod:`sslfer.synth.expression`), rotated by the head pose and projected orthographically
(weak perspective). The renderer draws every facial feature *through* these points, so they are the
ground truth that a 68-point landmark detector should recover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .expression import ACTION_INDEX
from .identity import Identity

# iBUG 68-point groups
JAW = np.arange(0, 17)
BROW_R, BROW_L = np.arange(17, 22), np.arange(22, 27)   # image-left brow, image-right brow
NOSE_BRIDGE, NOSE_BASE = np.arange(27, 31), np.arange(31, 36)
EYE_R, EYE_L = np.arange(36, 42), np.arange(42, 48)     # image-left eye, image-right eye
MOUTH_OUTER, MOUTH_INNER = np.arange(48, 60), np.arange(60, 68)

#: Rotation centre of the head, in face units.
HEAD_CENTRE = np.array([0.0, 0.55, -0.6])


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees (yaw: turn, positive to the image right; pitch: nod; roll: tilt)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    def rotation(self) -> np.ndarray:
        """3×3 rotation matrix R = Rz(roll) · Ry(yaw) · Rx(pitch)."""
        y, p, r = np.deg2rad([self.yaw, self.pitch, self.roll])
        rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
        ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
        rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
        return rz @ ry @ rx


def surface_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth of the face surface (a rounded cylinder, receding at the chin)."""
    zx = 0.75 * np.sqrt(np.clip(1.0 - (np.asarray(x) / 1.08) ** 2, 0.0, 1.0))
    return zx - 0.15 * np.clip(np.asarray(y) - 1.0, 0.0, None)


def jaw_curve(ident: Identity, n: int = 17, chin_drop: float = 0.0) -> np.ndarray:
    """``n`` points along the jaw from the image-left top to the image-right top (2-D, face units).

    The jaw is a superellipse from (±1, jaw_top) down to (0, face_height + chin_drop), resampled
    uniformly by arc length so that the middle point is the chin.
    """
    q = ident.jaw_exponent
    t = np.linspace(0.0, np.pi / 2, 200)
    xr = np.cos(t) ** (2.0 / q)
    yr = ident.jaw_top + (ident.face_height + chin_drop - ident.jaw_top) * np.sin(t) ** (2.0 / q)
    # image-left half runs top → chin, image-right half chin → top
    xs = np.concatenate([-xr, xr[::-1][1:]])
    ys = np.concatenate([yr, yr[::-1][1:]])
    seg = np.hypot(np.diff(xs), np.diff(ys))
    s = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(targets, s, xs), np.interp(targets, s, ys)], axis=1)


def landmarks_3d(ident: Identity, actions: np.ndarray) -> np.ndarray:
    """The 68 iBUG landmarks (68×3, face units) of ``ident`` showing expression ``actions``."""
    a = {name: float(actions[i]) for name, i in ACTION_INDEX.items()}
    pts = np.zeros((68, 3))
    jaw_drop = a["jaw_drop"]

    # jaw: the lower jaw moves down with the open mouth
    jaw = jaw_curve(ident, chin_drop=0.28 * jaw_drop)
    pts[JAW, :2] = jaw

    # eyebrows: 5 points each, outer → inner on the image-left brow
    for side, idx in ((-1, BROW_R), (1, BROW_L)):
        inner_x = ident.eye_spacing - 0.30
        outer_x = inner_x + ident.brow_length
        t = np.linspace(0.0, 1.0, 5)                        # 0 = outer end, 1 = inner end
        x = outer_x + (inner_x - outer_x) * t
        y = -ident.brow_height + 0.10 * (1 - t) ** 2 - ident.brow_arch * np.sin(np.pi * (0.1 + 0.75 * t))
        y = y - a["brow_inner_up"] * 0.12 * t ** 1.5
        y = y - a["brow_outer_up"] * 0.11 * (1 - t) ** 1.2
        y = y + a["brow_lower"] * (0.05 + 0.05 * t)
        x = x - a["brow_lower"] * 0.06 * t ** 2
        y = y + a["nose_wrinkle"] * 0.04 * t
        if side < 0:
            pts[idx, 0], pts[idx, 1] = -x, y
        else:
            pts[idx, 0], pts[idx, 1] = x[::-1], y[::-1]

    # nose bridge 27–30 and base 31–35
    tip = ident.nose_length
    pts[NOSE_BRIDGE, 1] = np.linspace(-0.06, tip, 4)
    pts[NOSE_BRIDGE, 2] = surface_z(0.0, 0.0) + np.array([0.12, 0.22, 0.32, 0.45])
    nw = ident.nose_width * (1 + 0.15 * a["nose_wrinkle"] + 0.05 * a["lip_stretch"])
    base_y = tip + np.array([0.10, 0.13, 0.15, 0.13, 0.10]) - 0.05 * a["nose_wrinkle"]
    pts[NOSE_BASE, 0] = np.array([-1.0, -0.5, 0.0, 0.5, 1.0]) * nw
    pts[NOSE_BASE, 1] = base_y
    pts[NOSE_BASE, 2] = surface_z(0.0, 0.0) + np.array([0.18, 0.24, 0.27, 0.24, 0.18])

    # eyes: corners + two upper-lid and two lower-lid points
    openness_up = 1.0 + 0.9 * a["upper_lid_up"] - 0.45 * a["lid_tighten"] - 0.15 * a["brow_lower"]
    openness_low = 1.0 + 0.3 * a["upper_lid_up"] - 0.6 * a["lid_tighten"]
    for side, idx in ((-1, EYE_R), (1, EYE_L)):
        cx = side * ident.eye_spacing
        half = ident.eye_width / 2
        outer = np.array([cx + side * half, -ident.eye_tilt / 2])
        inner = np.array([cx - side * half, ident.eye_tilt / 2])
        up = 0.55 * ident.eye_height * openness_up
        low = 0.45 * ident.eye_height * max(openness_low, 0.2)

        def lerp(f: float) -> np.ndarray:
            return outer + (inner - outer) * f

        # iBUG order: image-left eye 36 outer, 37, 38 upper, 39 inner, 40, 41 lower;
        # image-right eye 42 inner, 43, 44 upper, 45 outer, 46, 47 lower.
        if side < 0:
            ring = [lerp(0.0), lerp(0.33) - [0, up], lerp(0.67) - [0, up], lerp(1.0),
                    lerp(0.67) + [0, low], lerp(0.33) + [0, low]]
        else:
            ring = [lerp(1.0), lerp(0.67) - [0, up], lerp(0.33) - [0, up], lerp(0.0),
                    lerp(0.33) + [0, low], lerp(0.67) + [0, low]]
        pts[idx, :2] = np.array(ring)

    # mouth: outer 48–59, inner 60–67
    my = ident.mouth_y + 0.10 * jaw_drop
    w = ident.mouth_width * (1 + 0.25 * a["lip_stretch"] - 0.12 * a["lip_press"]
                             + 0.10 * (a["lip_corner_pull_l"] + a["lip_corner_pull_r"]) / 2)
    press = 1.0 - 0.55 * a["lip_press"] - 0.2 * a["lip_stretch"]
    ul, ll = ident.upper_lip * press, ident.lower_lip * press
    gap = 0.05 * a["lips_part"] + 0.42 * jaw_drop            # inner opening height
    raise_ul = 0.07 * a["upper_lip_raise"]
    # corner offsets: subject's right = image left (48), subject's left = image right (54)
    corner_y = {
        -1: -0.09 * a["lip_corner_pull_r"] + 0.08 * a["lip_corner_depress"] + 0.02 * a["lip_stretch"],
        1: -0.09 * a["lip_corner_pull_l"] + 0.08 * a["lip_corner_depress"] + 0.02 * a["lip_stretch"],
    }
    corner_x = {
        -1: -w - 0.06 * a["lip_corner_pull_r"],
        1: w + 0.06 * a["lip_corner_pull_l"],
    }
    top_inner = my - raise_ul * 0.6
    bot_inner = my + gap
    c_l, c_r = np.array([corner_x[-1], my + corner_y[-1]]), np.array([corner_x[1], my + corner_y[1]])
    pts[48, :2], pts[54, :2] = c_l, c_r

    def along(f: float) -> np.ndarray:
        """Point on the corner-to-corner line at fraction f (0 = image-left corner)."""
        return c_l + (c_r - c_l) * f

    # outer upper lip 49–53 (cupid's bow: 50/52 peaks, 51 dip)
    upper_prof = {49: (0.20, 0.75), 50: (0.38, 1.08), 51: (0.5, 0.95), 52: (0.62, 1.08), 53: (0.80, 0.75)}
    for k, (f, h) in upper_prof.items():
        base = along(f)
        pts[k, :2] = [base[0], top_inner - h * ul - raise_ul * (1.0 - abs(f - 0.5))]
    lower_prof = {55: (0.80, 0.75), 56: (0.62, 0.97), 57: (0.5, 1.0), 58: (0.38, 0.97), 59: (0.20, 0.75)}
    for k, (f, h) in lower_prof.items():
        base = along(f)
        pts[k, :2] = [base[0], bot_inner + h * ll + 0.03 * (1 - 2 * abs(f - 0.5)) * jaw_drop
                      + (base[1] - my) * (1 - 2 * abs(f - 0.5))]
    inner_w = 0.82
    ci_l, ci_r = along(0.5 - inner_w / 2), along(0.5 + inner_w / 2)
    ci_l = ci_l + [0.02, 0.0]
    ci_r = ci_r - [0.02, 0.0]
    pts[60, :2], pts[64, :2] = ci_l, ci_r
    for k, f in ((61, 0.30), (62, 0.5), (63, 0.70)):
        base = along(f)
        pts[k, :2] = [base[0], min(top_inner + 0.3 * (base[1] - my), base[1]) - raise_ul * 0.3]
    for k, f in ((65, 0.70), (66, 0.5), (67, 0.30)):
        base = along(f)
        pts[k, :2] = [base[0], max(bot_inner + 0.3 * (base[1] - my), base[1]) + 0.0]

    # depth: everything not set explicitly sits on the face surface (+ offsets for lips, eye sockets)
    rest = np.setdiff1d(np.arange(68), np.concatenate([NOSE_BRIDGE, NOSE_BASE]))
    pts[rest, 2] = surface_z(pts[rest, 0], pts[rest, 1])
    pts[MOUTH_OUTER, 2] += 0.10
    pts[MOUTH_INNER, 2] += 0.08
    pts[np.concatenate([EYE_R, EYE_L]), 2] -= 0.06
    pts[JAW, 2] -= 0.1
    return pts


def project(points: np.ndarray, pose: Pose | np.ndarray, scale: float,
            centre: tuple[float, float]) -> np.ndarray:
    """Rotate face-unit points about :data:`HEAD_CENTRE` and project them to pixels.

    ``pose`` is a :class:`Pose` or its rotation matrix; ``scale`` is pixels per face unit; ``centre`` is
    the pixel position of the face-unit origin (the midpoint between the eyes) in a frontal pose.
    """
    r = pose.rotation() if isinstance(pose, Pose) else pose
    p = (np.asarray(points, dtype=np.float64) - HEAD_CENTRE) @ r.T + HEAD_CENTRE
    return np.stack([centre[0] + scale * p[..., 0], centre[1] + scale * p[..., 1]], axis=-1)


def rotated_depth(points: np.ndarray, pose: Pose) -> np.ndarray:
    """z of the points after the head rotation (larger = closer to the camera)."""
    r = pose.rotation()
    return ((np.asarray(points, dtype=np.float64) - HEAD_CENTRE) @ r.T + HEAD_CENTRE)[..., 2]


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (landmarks 36 and 45), the 300-W normaliser."""
    return float(np.linalg.norm(landmarks[45] - landmarks[36]))
