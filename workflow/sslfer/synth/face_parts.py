"""The parts of a synthetic face, drawn through its projected landmarks (:mod:`sslfer.synth.geometry`): head
outline, hair, ears, neck and glasses (3-D helper points in face units), then eyes, brows, nose, mouth and
wrinkles."""

from __future__ import annotations

import numpy as np

from .expression import ACTION_INDEX
from .geometry import BROW_L, EYE_L, EYE_R, surface_z
from .identity import Identity
from .draw import catmull_rom, ellipse, full_mask, paint, shade


def head_arc(ident: Identity, widen: float, lift: float, n: int = 25) -> np.ndarray:
    """Arc over the skull from the image-right jaw top to the image-left one (3-D)."""
    th = np.linspace(0.0, np.pi, n)
    x = (1.0 + widen) * np.cos(th)
    y = ident.jaw_top - (ident.forehead_height + lift) * np.sin(th) ** 0.9
    z = surface_z(x * 0.95, 0.0) * 0.8 - 0.25
    return np.stack([x, y, z], axis=1)


def hairline(ident: Identity, n: int = 21, wave: float = 0.0) -> np.ndarray:
    """Hairline from the image-left temple over the forehead to the image-right temple (3-D)."""
    th = np.linspace(np.pi, 0.0, n)
    side_y = ident.jaw_top - 0.25
    x = 0.97 * np.cos(th)
    y = side_y + (ident.hairline - side_y) * np.sin(th) ** 0.6
    y = y + wave * np.sin(th * 9.0) * np.sin(th)
    z = surface_z(x, 0.0)
    return np.stack([x, y, z], axis=1)


def draw_hair_back(img, ident: Identity, pp) -> None:
    colour = np.array(ident.hair) * 0.85
    if ident.hair_style == "long":
        th = np.linspace(-0.35, np.pi + 0.35, 30)
        x = 1.22 * np.cos(th)
        y = ident.jaw_top - (ident.forehead_height + 0.12) * np.sin(th)
        y = np.where(th < 0, ident.jaw_top + 1.9 * (-th / 0.35), y)
        y = np.where(th > np.pi, ident.jaw_top + 1.9 * ((th - np.pi) / 0.35), y)
        pts = np.stack([x, y, np.full_like(x, -0.6)], axis=1)
        paint(img, [pp(pts)], colour, blur=0.6)
    elif ident.hair_style == "curly":
        th = np.linspace(0, 2 * np.pi, 60, endpoint=False)
        r = 1.0 + 0.06 * np.sin(th * 14)
        x = 1.25 * r * np.cos(th)
        y = (ident.jaw_top - 0.35) + 1.5 * r * np.sin(th) * np.where(np.sin(th) < 0, 1.05, 0.55)
        pts = np.stack([x, y, np.full_like(x, -0.6)], axis=1)
        paint(img, [pp(pts)], colour, blur=0.6)
    elif ident.hair_style == "bun":
        c = np.array([[0.0, ident.jaw_top - ident.forehead_height - 0.25, -0.4]])
        ring = ellipse((0, 0), 0.42, 0.36, n=24)
        pts = np.concatenate([ring + c[0, :2], np.full((24, 1), c[0, 2])], axis=1)
        paint(img, [pp(pts)], colour, blur=0.6)


def draw_hair_front(img, ident: Identity, pp, scale: float) -> None:
    if ident.hair_style == "bald":
        # a little hair at the sides
        for side in (-1, 1):
            pts = np.array([[side * 1.02, ident.jaw_top - 0.05, -0.1], [side * 1.07, ident.jaw_top - 0.7, -0.2],
                            [side * 0.93, ident.jaw_top - 0.7, -0.1], [side * 0.92, ident.jaw_top - 0.1, 0.0]])
            paint(img, [pp(pts)], ident.hair, alpha=0.7, blur=0.8)
        return
    wave = 0.05 if ident.hair_style in ("fringe", "curly") else 0.0
    line = hairline(ident, wave=wave)
    if ident.hair_style == "fringe":
        line[:, 1] = np.maximum(line[:, 1], np.minimum(line[:, 1] + 0.25, -0.62))
    outer = head_arc(ident, widen=0.07, lift=0.12)
    # sideburns go down to the jaw top, then the cap follows the skull
    sb_l = np.array([[-1.02, ident.jaw_top + 0.05, -0.05], [-0.95, ident.jaw_top + 0.05, 0.0]])
    sb_r = np.array([[0.95, ident.jaw_top + 0.05, 0.0], [1.02, ident.jaw_top + 0.05, -0.05]])
    cap = np.concatenate([sb_l[::-1][:1], sb_l[1:], line, sb_r, outer], axis=0)
    paint(img, [pp(cap)], ident.hair, blur=0.5)
    # strands: darker and lighter curves for texture, one call per tone
    rng = np.random.default_rng(ident.number)
    ys = np.linspace(ident.hairline - 0.05, ident.jaw_top - ident.forehead_height, 6)
    for tone in (0.7, 1.3):
        strands = []
        for _ in range(4):
            xs = rng.uniform(-0.8, 0.8) + 0.15 * np.sin(np.linspace(0, 2, 6) + rng.uniform(0, 6))
            strands.append(pp(np.stack([xs, ys, np.full(6, 0.2)], axis=1)))
        paint(img, strands, np.clip(np.array(ident.hair) * tone, 0, 1), alpha=0.35,
              lines=max(scale * 0.025, 1), closed=False)


def draw_ears(img, pp, skin) -> None:
    for side in (-1, 1):
        c = np.array([side * 1.0, 0.22, -0.35])
        ring = ellipse((0, 0), 0.14, 0.28, n=20)
        pts = np.concatenate([ring + [c[0] + side * 0.06, c[1]], np.full((20, 1), c[2])], axis=1)
        paint(img, [pp(pts)], np.array(skin) * 0.88, blur=0.5)
        inner = np.concatenate([ellipse((0, 0), 0.06, 0.17, n=16) + [c[0] + side * 0.07, c[1]],
                                np.full((16, 1), c[2])], axis=1)
        shade(img, [pp(inner)], 0.75, blur=1.0)


def draw_neck(img, ident: Identity, pp, skin, shirt) -> None:
    neck = np.array([[-0.55, 0.9, -0.5], [0.55, 0.9, -0.5], [0.6, 2.4, -0.5], [-0.6, 2.4, -0.5]])
    paint(img, [pp(neck)], np.array(skin) * 0.8, blur=0.6)
    body = np.array([[-0.6, 2.05, -0.5], [-2.6, 2.6, -0.6], [-2.9, 4.5, -0.6], [2.9, 4.5, -0.6],
                     [2.6, 2.6, -0.6], [0.6, 2.05, -0.5], [0.0, 2.45, -0.4]])
    paint(img, [pp(body)], shirt, blur=0.6)


def draw_glasses(img, lm: np.ndarray, scale: float) -> None:
    colour = (0.08, 0.08, 0.1)
    t = max(scale * 0.035, 1.0)
    rims = []
    for idx in (EYE_R, EYE_L):
        c = lm[idx].mean(axis=0)
        w = np.linalg.norm(lm[idx[3]] - lm[idx[0]])
        ang = np.arctan2(lm[idx[3], 1] - lm[idx[0], 1], lm[idx[3], 0] - lm[idx[0], 0])
        ring = ellipse(c + [0, 0.02 * scale], 0.85 * w, 0.6 * w, angle=ang)
        rims.append(ring)
        paint(img, [ring], (0.85, 0.9, 0.95), alpha=0.08)      # lens glare
    paint(img, rims, colour, lines=t)
    l_in, r_in = rims[0][np.argmax(rims[0][:, 0])], rims[1][np.argmin(rims[1][:, 0])]
    paint(img, [np.stack([l_in, (l_in + r_in) / 2 - [0, 0.03 * scale], r_in])], colour, lines=t,
          closed=False)


# --------------------------------------------------------------------------------------------------
# the face


def draw_eye(img, lm: np.ndarray, idx: np.ndarray, ident: Identity, scale: float, gaze, skin) -> None:
    ring = catmull_rom(lm[idx], closed=True, per_segment=6)
    # socket shadow above/around the eye
    c = lm[idx].mean(axis=0)
    w = np.linalg.norm(lm[idx[3]] - lm[idx[0]])
    shade(img, [ellipse(c - [0, 0.06 * scale], 0.8 * w, 0.55 * w)], 0.82, blur=0.12 * scale)
    paint(img, [ring], (0.93, 0.91, 0.88))
    clip = full_mask(img.shape, [ring])
    r_iris = 0.065 * scale
    ic = c + np.array(gaze) * 0.03 * scale
    paint(img, [ellipse(ic, r_iris, r_iris, n=24)], ident.iris, clip=clip)
    shade(img, [ellipse(ic, r_iris, r_iris, n=24)], 0.7, clip=clip, lines=max(scale * 0.012, 1))
    paint(img, [ellipse(ic, 0.45 * r_iris, 0.45 * r_iris, n=16)], (0.03, 0.03, 0.03), clip=clip)
    paint(img, [ellipse(ic + [0.3 * r_iris, -0.35 * r_iris], 0.18 * r_iris, 0.18 * r_iris, n=10)],
          (1, 1, 1), alpha=0.8, clip=clip)
    # upper lid shadow inside the eye, then lid lines
    upper = catmull_rom(lm[idx[[0, 1, 2, 3]]], closed=False, per_segment=6)
    lower = catmull_rom(lm[idx[[3, 4, 5, 0]]], closed=False, per_segment=6)
    shade(img, [upper], 0.6, blur=0.02 * scale, clip=clip, lines=max(scale * 0.05, 1), closed=False)
    paint(img, [upper], (0.06, 0.04, 0.04), lines=max(scale * 0.035, 1.0), closed=False)
    paint(img, [lower], np.array(skin) * 0.55, lines=max(scale * 0.015, 1.0), closed=False, alpha=0.8)
    # eyelid crease above the upper lid
    crease = upper - [0, 0.07 * scale]
    shade(img, [crease[3:-3]], 0.8, lines=max(scale * 0.02, 1.0), closed=False, blur=0.01 * scale)


def draw_brow(img, lm: np.ndarray, idx: np.ndarray, ident: Identity, scale: float) -> None:
    top = catmull_rom(lm[idx], closed=False, per_segment=4)
    n = len(top)
    # thickness tapers towards the outer end (the first point of BROW_R, the last of BROW_L)
    t = np.linspace(0, 1, n)
    if idx is BROW_L:
        t = t[::-1]
    thick = ident.brow_thickness * scale * (0.55 + 0.45 * t)
    tang = np.gradient(top, axis=0)
    normal = np.stack([-tang[:, 1], tang[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
    normal *= np.sign(normal[:, 1:2] + 1e-9)  # point downwards
    # landmarks sit on the upper third of the brow
    upper = top - normal * thick[:, None] * 0.3
    lower = top + normal * thick[:, None] * 0.7
    poly = np.concatenate([upper, lower[::-1]], axis=0)
    colour = np.array(ident.hair) * 0.8
    paint(img, [poly], colour, alpha=0.92, blur=0.012 * scale)


def draw_nose(img, lm: np.ndarray, scale: float, skin, light_angle: float) -> None:
    bridge, base = lm[27:31], lm[31:36]
    side = 1.0 if np.cos(light_angle) < 0 else -1.0   # shadow on the side away from the light
    w = np.linalg.norm(base[4] - base[0])
    sh = np.stack([bridge[0] + [side * 0.08 * scale, 0], bridge[3] + [side * 0.16 * scale, -0.05 * scale],
                   base[4 if side > 0 else 0] + [side * 0.02 * scale, 0],
                   base[3 if side > 0 else 1], bridge[3] + [side * 0.04 * scale, 0],
                   bridge[1] + [side * 0.03 * scale, 0]])
    shade(img, [sh], 0.8, blur=0.05 * scale)
    # wings of the nose
    for a, b in ((0, 1), (4, 3)):
        wing = ellipse((base[a] + base[b]) / 2 - [0, 0.04 * scale], 0.45 * w / 2, 0.07 * scale)
        shade(img, [wing], 0.85, blur=0.03 * scale)
    # under-nose shadow and nostrils
    under = np.stack([base[0], base[1], base[2], base[3], base[4],
                      base[4] + [0, 0.05 * scale], base[0] + [0, 0.05 * scale]])
    shade(img, [under], 0.8, blur=0.03 * scale)
    for a, b in ((0, 2), (2, 4)):
        c = base[a] * 0.45 + base[b] * 0.55 if a == 0 else base[a] * 0.55 + base[b] * 0.45
        paint(img, [ellipse(c - [0, 0.025 * scale], 0.055 * scale, 0.028 * scale, n=16)],
              np.array(skin) * 0.3, alpha=0.9, blur=0.01 * scale)
    # tip highlight
    paint(img, [ellipse(bridge[3] + [0, -0.03 * scale], 0.07 * scale, 0.05 * scale)], (1, 1, 1),
          alpha=0.12, blur=0.04 * scale)


def draw_mouth(img, lm: np.ndarray, ident: Identity, scale: float) -> None:
    outer = catmull_rom(lm[48:60], closed=True, per_segment=5)
    inner_pts = lm[60:68]
    inner = catmull_rom(inner_pts, closed=True, per_segment=5)
    lip = np.array(ident.lip_colour)
    paint(img, [outer], lip, blur=0.01 * scale)
    # lower lip a little lighter, shadow under the lower lip
    paint(img, [catmull_rom(np.concatenate([lm[[54, 55, 56, 57, 58, 59, 48]], lm[[60, 67, 66, 65, 64]]]),
                            closed=True, per_segment=3)], np.clip(lip * 1.12, 0, 1), alpha=0.5)
    below = np.stack([lm[59] + [0, 0.03 * scale], lm[57] + [0, 0.06 * scale], lm[55] + [0, 0.03 * scale]])
    shade(img, [below], 0.85, lines=0.05 * scale, blur=0.03 * scale, closed=False)
    opening = float(np.mean(lm[[65, 66, 67], 1] - lm[[63, 62, 61], 1]))
    if opening > 0.012 * scale:
        paint(img, [inner], (0.2, 0.06, 0.07))
        clip = full_mask(img.shape, [inner])
        # upper teeth: a band under the upper inner lip
        top = catmull_rom(lm[[60, 61, 62, 63, 64]], closed=False, per_segment=4)
        teeth = np.concatenate([top, top[::-1] + [0, 0.09 * scale]])
        paint(img, [teeth], (0.92, 0.9, 0.85), clip=clip)
        # lower teeth when wide open
        if opening > 0.15 * scale:
            bot = catmull_rom(lm[[64, 65, 66, 67, 60]], closed=False, per_segment=4)
            paint(img, [np.concatenate([bot, bot[::-1] - [0, 0.05 * scale]])], (0.85, 0.83, 0.78), clip=clip)
        shade(img, [inner], 0.7, lines=max(0.02 * scale, 1), clip=clip)
    else:
        line = catmull_rom(lm[[48, 60, 61, 62, 63, 64, 54]], closed=False, per_segment=4)
        paint(img, [line], lip * 0.35, lines=max(0.022 * scale, 1), closed=False, alpha=0.9)
    # corners
    for k in (48, 54):
        paint(img, [ellipse(lm[k], 0.02 * scale, 0.02 * scale, n=8)], lip * 0.4, alpha=0.6, blur=0.01 * scale)


def draw_wrinkles(img, lm: np.ndarray, actions: np.ndarray, scale: float) -> None:
    a = {name: float(actions[i]) for name, i in ACTION_INDEX.items()}
    w = max(0.02 * scale, 1.0)
    # nasolabial folds (smile, disgust, squint)
    for k_nose, k_mouth, pull in ((31, 48, a["lip_corner_pull_r"]), (35, 54, a["lip_corner_pull_l"])):
        s = min(1.0, 0.25 + 0.7 * pull + 0.6 * a["upper_lip_raise"] + 0.3 * a["nose_wrinkle"])
        out = np.sign(lm[k_mouth, 0] - lm[k_nose, 0])
        fold = np.stack([lm[k_nose] + [out * 0.08 * scale, -0.02 * scale],
                         (lm[k_nose] + lm[k_mouth]) / 2 + [out * 0.16 * scale, 0],
                         lm[k_mouth] + [out * 0.10 * scale, 0.06 * scale]])
        shade(img, [catmull_rom(fold, closed=False)], 1 - 0.3 * s, lines=w, blur=0.015 * scale, closed=False)
    # forehead lines (brows raised)
    raise_ = max(a["brow_inner_up"], a["brow_outer_up"])
    if raise_ > 0.05:
        top = min(lm[19, 1], lm[24, 1])
        for i in range(3):
            y = top - (0.14 + 0.09 * i) * scale
            line = np.stack([[lm[18, 0], y + 0.02 * scale], [(lm[21, 0] + lm[22, 0]) / 2, y],
                             [lm[25, 0], y + 0.02 * scale]])
            shade(img, [catmull_rom(line, closed=False)], 1 - 0.25 * raise_, lines=w, blur=0.01 * scale,
                  closed=False)
    # vertical lines between the brows (brows lowered)
    if a["brow_lower"] > 0.05:
        for k in (21, 22):
            x = lm[k, 0] + (0.04 if k == 21 else -0.04) * scale
            line = np.array([[x, lm[k, 1] - 0.05 * scale], [x, lm[k, 1] + 0.12 * scale]])
            shade(img, [line], 1 - 0.35 * a["brow_lower"], lines=w, blur=0.01 * scale, closed=False)
    # nose wrinkles
    if a["nose_wrinkle"] > 0.05:
        for j in range(3):
            y = lm[28, 1] + (j - 1) * 0.05 * scale
            line = np.array([[lm[28, 0] - 0.08 * scale, y], [lm[28, 0] + 0.08 * scale, y]])
            shade(img, [line], 1 - 0.3 * a["nose_wrinkle"], lines=w, blur=0.01 * scale, closed=False)
