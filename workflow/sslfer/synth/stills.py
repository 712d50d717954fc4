"""Evaluation sets in the real datasets' layouts: AffectNet-, FER2013- and LFW-style stills.

Every image is a pure function of ``(seed, dataset, image index)``; identities come from number ranges
disjoint from the pretraining corpus (see :data:`IDENTITY_BASE`). Layouts follow ``shared/DATASETS.md``:

- AffectNet: ``Manually_Annotated_Images/<dir>/<sha1>.jpg`` and ``Manually_Annotated_file_lists/``
  ``training.csv`` (with header) / ``validation.csv`` (without, as in the real release), columns
  ``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks, expression,
  valence, arousal``; a small fraction of training rows carries the real non-task labels 8 (None),
  9 (Uncertain) and 10 (No-Face, no face in the image, valence/arousal -2).
- FER2013: ``fer2013.csv`` with ``emotion, pixels, Usage`` (48×48 grey, Training/PublicTest/PrivateTest).
- LFW: ``lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg`` (250×250) and the tab-separated
  ``pairsDevTrain.txt``, ``pairsDevTest.txt``, ``pairs.txt`` that scikit-learn's loaders read.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import cv2
import numpy as np

from .expression import CLASSES, FER2013_FROM_CLASS, PROTOTYPES, expression_vector, valence_arousal
from .identity import sample_identity
from .render import make_background
from .scenes import AFFECTNET, FER2013, LFW, Framing, render_still

#: First identity number of each dataset (pretraining identities are 0 … n-1).
IDENTITY_BASE = {"affectnet": 1_000_000, "fer2013": 2_000_000, "lfw": 3_000_000}
_DATASET_KEY = {"affectnet": 3, "fer2013": 4, "lfw": 5}
AFFECTNET_NONE, AFFECTNET_UNCERTAIN, AFFECTNET_NOFACE = 8, 9, 10


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"could not write {path}")


def _face_box(lm: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """AffectNet-style face box (x, y, w, h): the landmarks' box grown 10 % sideways and 30 % upwards."""
    x0, y0 = lm.min(axis=0)
    x1, y1 = lm.max(axis=0)
    w, h = x1 - x0, y1 - y0
    x0, x1 = x0 - 0.1 * w, x1 + 0.1 * w
    y0, y1 = y0 - 0.3 * h, y1 + 0.05 * h
    x0, y0 = max(int(x0), 0), max(int(y0), 0)
    x1, y1 = min(int(np.ceil(x1)), size[1]), min(int(np.ceil(y1)), size[0])
    return x0, y0, x1 - x0, y1 - y0


def _still_item(dataset: str, index: int, seed: int, class_idx: int, framing: Framing,
                identity_number: int, intensity_range: tuple[float, float] = (0.55, 1.0)) -> dict:
    rng = np.random.default_rng([seed, _DATASET_KEY[dataset], index])
    ident = sample_identity(identity_number, seed)
    intensity = 0.0 if class_idx == 0 else float(rng.uniform(*intensity_range))
    img, lm, pose = render_still(ident, expression_vector(class_idx, intensity), framing, rng)
    val, aro = valence_arousal(class_idx, intensity, rng)
    return {"image": img, "landmarks": lm, "pose": pose, "identity": ident.name,
            "identity_number": identity_number, "expression": class_idx, "intensity": intensity,
            "valence": val, "arousal": aro}


# --------------------------------------------------------------------------------------------------
# AffectNet


def affectnet_task(args: tuple[int, int, str, int, str]) -> dict:
    """Render AffectNet image ``index`` with label ``label`` into ``root``; return its ground truth."""
    index, label, split, seed, root = args
    rng = np.random.default_rng([seed, _DATASET_KEY["affectnet"], index, 1])
    digest = hashlib.sha1(f"{seed}-{index}".encode()).hexdigest()
    rel = f"{index % 50 + 1}/{digest}.jpg"
    path = Path(root) / "Manually_Annotated_Images" / rel
    number = IDENTITY_BASE["affectnet"] + index
    if label == AFFECTNET_NOFACE:
        img = np.clip(make_background(AFFECTNET.size, rng) * 255 + 0.5, 0, 255).astype(np.uint8)
        _write_jpeg(path, img)
        return {"split": split, "subDirectory_filePath": rel, "face_box": (0, 0, 0, 0), "landmarks": None,
                "expression": label, "valence": -2.0, "arousal": -2.0, "intensity": 0.0,
                "identity": "", "identity_number": -1, "yaw": np.nan, "pitch": np.nan, "roll": np.nan,
                "has_face": False}
    if label in (AFFECTNET_NONE, AFFECTNET_UNCERTAIN):
        if label == AFFECTNET_NONE:       # an expression outside the 8 classes: a sparse random mixture
            n_act = PROTOTYPES.shape[1]
            actions = rng.uniform(0, 0.7, n_act) * (rng.uniform(size=n_act) < 0.3)
        else:                              # uncertain: a blend of two classes
            a, b = rng.choice(np.arange(1, len(CLASSES)), 2, replace=False)
            actions = 0.5 * PROTOTYPES[a] + 0.5 * PROTOTYPES[b]
        ident = sample_identity(number, seed)
        img, lm, pose = render_still(ident, actions, AFFECTNET, rng)
        val, aro = valence_arousal(0, 0.0, rng)
        item = {"image": img, "landmarks": lm, "pose": pose, "identity": ident.name, "intensity": 0.0,
                "valence": val, "arousal": aro}
    else:
        item = _still_item("affectnet", index, seed, label, AFFECTNET, number)
    _write_jpeg(path, item["image"])
    pose = item["pose"]
    return {"split": split, "subDirectory_filePath": rel, "face_box": _face_box(item["landmarks"], AFFECTNET.size),
            "landmarks": item["landmarks"], "expression": label, "valence": item["valence"],
            "arousal": item["arousal"], "intensity": item["intensity"], "identity": item["identity"],
            "identity_number": number, "yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll, "has_face": True}


def plan_affectnet(train_per_class: int, val_per_class: int, extra_label_fraction: float,
                   seed: int) -> list[tuple[int, str]]:
    """(label, split) per image: balanced classes, training rows sprinkled with labels 8–10."""
    rng = np.random.default_rng([seed, _DATASET_KEY["affectnet"], 1000])
    train = [c for c in range(len(CLASSES)) for _ in range(train_per_class)]
    n_extra = int(round(extra_label_fraction * len(train)))
    train += [AFFECTNET_NONE + (i % 3) for i in range(n_extra)]
    val = [c for c in range(len(CLASSES)) for _ in range(val_per_class)]
    train = [train[i] for i in rng.permutation(len(train))]
    val = [val[i] for i in rng.permutation(len(val))]
    return [(c, "training") for c in train] + [(c, "validation") for c in val]


def write_affectnet_lists(root: Path, rows: list[dict]) -> None:
    """``training.csv`` (header) and ``validation.csv`` (no header, as in the real release)."""
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
              "expression", "valence", "arousal"]
    for split, with_header in (("training", True), ("validation", False)):
        with open(lists / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            if with_header:
                w.writerow(header)
            for r in rows:
                if r["split"] != split:
                    continue
                lm = "" if r["landmarks"] is None else ";".join(f"{v:.2f}" for v in np.asarray(r["landmarks"]).ravel())
                x, y, bw, bh = r["face_box"]
                w.writerow([r["subDirectory_filePath"], x, y, bw, bh, lm, r["expression"],
                            f"{r['valence']:.6f}", f"{r['arousal']:.6f}"])


# --------------------------------------------------------------------------------------------------
# FER2013

FER_USAGES = ("Training", "PublicTest", "PrivateTest")


def plan_fer2013(train_per_class: int, test_per_class: int, seed: int) -> list[tuple[int, str]]:
    """(AffectNet class code, Usage) per image: the 7 FER2013 classes, balanced, shuffled per usage."""
    rng = np.random.default_rng([seed, _DATASET_KEY["fer2013"], 1000])
    classes = [CLASSES.index(name) for name in CLASSES if name in FER2013_FROM_CLASS]
    plan: list[tuple[int, str]] = []
    for usage, per in zip(FER_USAGES, (train_per_class, test_per_class, test_per_class)):
        items = [c for c in classes for _ in range(per)]
        plan += [(items[i], usage) for i in rng.permutation(len(items))]
    return plan


def fer2013_task(args: tuple[int, int, str, int]) -> dict:
    """Render FER2013 image ``index`` (48×48 grey); return its row and ground truth."""
    index, class_idx, usage, seed = args
    item = _still_item("fer2013", index, seed, class_idx, FER2013, IDENTITY_BASE["fer2013"] + index)
    grey = cv2.cvtColor(item["image"], cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)
    item["image"] = small
    item["landmarks"] = item["landmarks"] * (48.0 / FER2013.size[1])
    item["usage"] = usage
    item["emotion"] = FER2013_FROM_CLASS[CLASSES[class_idx]]
    return item


def write_fer2013_csv(path: Path, items: list[dict]) -> None:
    """``fer2013.csv``: ``emotion,pixels,Usage``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for it in items:
            w.writerow([it["emotion"], " ".join(map(str, it["image"].ravel().tolist())), it["usage"]])


# --------------------------------------------------------------------------------------------------
# LFW

_LFW_EXPRESSION_P = np.array([0.45, 0.35, 0.03, 0.05, 0.02, 0.02, 0.03, 0.05])


def plan_lfw(n_people: int, max_images: int, seed: int) -> list[tuple[int, int, int]]:
    """(person, image number 1…k, AffectNet class code) per image."""
    rng = np.random.default_rng([seed, _DATASET_KEY["lfw"], 1000])
    counts = np.clip(rng.geometric(0.3, n_people), 1, max_images)
    plan = []
    for p, k in enumerate(counts):
        for j in range(int(k)):
            plan.append((p, j + 1, int(rng.choice(len(CLASSES), p=_LFW_EXPRESSION_P))))
    return plan


def lfw_task(args: tuple[int, int, int, int, int, str]) -> dict:
    """Render LFW image ``index`` of ``person`` (number ``j``) into ``<root>/lfw_home/lfw_funneled``."""
    index, person, j, class_idx, seed, root = args
    number = IDENTITY_BASE["lfw"] + person
    item = _still_item("lfw", index, seed, class_idx, LFW, number, intensity_range=(0.3, 0.9))
    name = item["identity"]
    rel = f"{name}/{name}_{j:04d}.jpg"
    _write_jpeg(Path(root) / "lfw_home" / "lfw_funneled" / rel, item["image"])
    item["relpath"] = rel
    item["image_number"] = j
    del item["image"]
    return item


def lfw_pairs(people: dict[str, int], pairs_per_fold: int, dev_train: int, dev_test: int,
              seed: int) -> dict[str, list[str]]:
    """Pair files' lines (tab-separated) for ``pairs.txt`` and the two View-1 files.

    People are split into 10 disjoint folds; same-person pairs come from people of the fold with ≥ 2
    images, different-person pairs from two people of the fold. View 1 uses folds 0–6 for training and
    7–9 for testing (disjoint people, as in LFW).
    """
    rng = np.random.default_rng([seed, _DATASET_KEY["lfw"], 1001])
    names = sorted(people)
    order = [names[i] for i in rng.permutation(len(names))]
    folds = [order[f::10] for f in range(10)]

    def draw(pool: list[str], n: int) -> tuple[list[str], list[str]]:
        multi = [p for p in pool if people[p] >= 2]
        same, diff, seen = [], [], set()
        for _ in range(50 * n):
            if len(same) >= n or not multi:
                break
            p = multi[rng.integers(len(multi))]
            i, j = sorted(rng.choice(people[p], 2, replace=False) + 1)
            key = (p, i, j)
            if key not in seen:
                seen.add(key)
                same.append(f"{p}\t{i}\t{j}")
        seen = set()
        for _ in range(50 * n):
            if len(diff) >= n or len(pool) < 2:
                break
            a, b = rng.choice(len(pool), 2, replace=False)
            pa_, pb = sorted((pool[a], pool[b]))
            ia, ib = int(rng.integers(people[pa_])) + 1, int(rng.integers(people[pb])) + 1
            key = (pa_, ia, pb, ib)
            if key not in seen:
                seen.add(key)
                diff.append(f"{pa_}\t{ia}\t{pb}\t{ib}")
        return same, diff

    pairs = [f"10\t{pairs_per_fold}"]
    for fold in folds:
        same, diff = draw(fold, pairs_per_fold)
        if len(same) < pairs_per_fold or len(diff) < pairs_per_fold:
            raise ValueError(f"LFW: fold too small for {pairs_per_fold} pairs of each kind "
                             f"(got {len(same)} same, {len(diff)} different); raise synth.lfw.people")
        pairs += same + diff
    out = {"pairs.txt": pairs}
    for fname, pool_folds, n in (("pairsDevTrain.txt", folds[:7], dev_train), ("pairsDevTest.txt", folds[7:], dev_test)):
        pool = [p for f in pool_folds for p in f]
        same, diff = draw(pool, n)
        if len(same) < n or len(diff) < n:
            raise ValueError(f"LFW: not enough people for {n} pairs of each kind in {fname}; "
                             "raise synth.lfw.people or lower the pair counts")
        out[fname] = [str(n)] + same + diff
    return out
