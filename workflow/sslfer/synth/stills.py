"""Evaluation sets in the real datasets' layouts: AffectNet-, FER2013- and LFW-style stills.

Every image is a pure function of ``(seed, dataset, image index)``; identities come from number ranges
disjoint from the pretraining corpus (see :data:`IDENTITY_BASE`). Layouts follow ``docs/datasets.md``:

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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class LfwPlan:
    """People of the LFW-style set: images per person, their fold (0–9) and expressions per image."""

    counts: list[int]
    folds: list[int]
    images: list[tuple[int, int, int]]      # (person, image number 1…k, AffectNet class code)

    def people(self, folds: range) -> list[int]:
        """People of the given folds, fold by fold, in person order within a fold."""
        return [p for f in folds for p, fp in enumerate(self.folds) if fp == f]


def _same_pairs(counts: list[int], people: list[int]) -> int:
    return sum(counts[p] * (counts[p] - 1) // 2 for p in people)


def plan_lfw(n_people: int, max_images: int, pairs_per_fold: int, dev_train: int, dev_test: int,
             seed: int) -> LfwPlan:
    """Draw images per person (mostly few, as in LFW), split people into 10 folds, and add images to
    people of a fold until it holds enough distinct same-person pairs (with a margin) for ``pairs.txt``
    and the View-1 files, so any configuration that the schema admits yields valid pair files.
    """
    rng = np.random.default_rng([seed, _DATASET_KEY["lfw"], 1000])
    counts = [int(c) for c in np.clip(rng.geometric(0.3, n_people), 1, max_images)]
    order = rng.permutation(n_people)
    folds = [0] * n_people
    for rank, p in enumerate(order):
        folds[int(p)] = rank % 10
    plan = LfwPlan(counts, folds, [])
    needs = [(plan.people(range(f, f + 1)), 2 * pairs_per_fold) for f in range(10)]
    needs += [(plan.people(range(7)), 2 * dev_train), (plan.people(range(7, 10)), 2 * dev_test)]
    for group, need in needs:
        while _same_pairs(counts, group) < need:
            counts[group[int(rng.integers(len(group)))]] += 1
    images = [(p, j + 1, int(rng.choice(len(CLASSES), p=_LFW_EXPRESSION_P)))
              for p in range(n_people) for j in range(counts[p])]
    return LfwPlan(counts, folds, images)


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


def lfw_pairs(plan: LfwPlan, names: list[str], pairs_per_fold: int, dev_train: int, dev_test: int,
              seed: int) -> dict[str, list[str]]:
    """Pair files' lines (tab-separated) for ``pairs.txt`` and the two View-1 files.

    Same-person pairs come from people of the fold with ≥ 2 images, different-person pairs from two
    people of the fold; pairs are distinct within a file. View 1 uses folds 0–6 for training and 7–9
    for testing (disjoint people, as in LFW). ``names[p]`` is person ``p``'s folder name.
    """
    rng = np.random.default_rng([seed, _DATASET_KEY["lfw"], 1001])
    counts = plan.counts

    def draw(pool: list[int], n: int, fname: str) -> list[str]:
        multi = [p for p in pool if counts[p] >= 2]
        same: dict[tuple, str] = {}
        for _ in range(200 * n):
            if len(same) >= n or not multi:
                break
            p = multi[int(rng.integers(len(multi)))]
            i, j = sorted(int(v) + 1 for v in rng.choice(counts[p], 2, replace=False))
            same.setdefault((p, i, j), f"{names[p]}\t{i}\t{j}")
        diff: dict[tuple, str] = {}
        for _ in range(200 * n):
            if len(diff) >= n or len(pool) < 2:
                break
            a, b = sorted(int(v) for v in rng.choice(pool, 2, replace=False))
            ia, ib = int(rng.integers(counts[a])) + 1, int(rng.integers(counts[b])) + 1
            diff.setdefault((a, ia, b, ib), f"{names[a]}\t{ia}\t{names[b]}\t{ib}")
        if len(same) < n or len(diff) < n:
            raise ValueError(f"LFW {fname}: could draw only {len(same)} same / {len(diff)} different pairs of "
                             f"{n}; raise synth.lfw.people or lower the pair counts")
        return list(same.values()) + list(diff.values())

    pairs = [f"10\t{pairs_per_fold}"]
    for f in range(10):
        pairs += draw(plan.people(range(f, f + 1)), pairs_per_fold, "pairs.txt")
    return {
        "pairs.txt": pairs,
        "pairsDevTrain.txt": [str(dev_train)] + draw(plan.people(range(7)), dev_train,
                                                     "pairsDevTrain.txt"),
        "pairsDevTest.txt": [str(dev_test)] + draw(plan.people(range(7, 10)), dev_test,
                                                   "pairsDevTest.txt"),
    }
