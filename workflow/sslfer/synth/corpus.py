"""Write the embedded synthetic corpus: one function per dataset, each with its ground truth as Parquet.

Layout under ``root`` (default ``resources/synth``)::

    voxceleb/videos/idNNNNN/<clip>/<utt>.mp4   voxceleb/vox1_meta.csv
    affectnet/Manually_Annotated_Images/…      affectnet/Manually_Annotated_file_lists/{training,validation}.csv
    fer2013/fer2013.csv
    lfw/lfw_home/lfw_funneled/<Name>/…         lfw/lfw_home/{pairs,pairsDevTrain,pairsDevTest}.txt
    groundtruth/{videos,affectnet,fer2013,lfw}.parquet        (per frame / per image)
    groundtruth/{videos,affectnet,fer2013,lfw}_identities.parquet

Work is spread over ``workers`` processes; every item is seeded by its own index, so the output is the
same for any worker count.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ..parquet import landmarks_array, provenance, write_parquet
from .expression import CLASSES
from .identity import sample_identity
from .stills import (IDENTITY_BASE, affectnet_task, fer2013_task, lfw_pairs, lfw_task, plan_affectnet,
                     plan_fer2013, plan_lfw, write_affectnet_lists, write_fer2013_csv)
from .trajectory import DEFAULT_HOLD_S
from .videos import plan_videos, render_video_task

log = logging.getLogger(__name__)

VIDEO_DIR = "voxceleb/videos"
VOX_META = "voxceleb/vox1_meta.csv"


def _run(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int, desc: str) -> list[Any]:
    """Map ``fn`` over ``tasks`` in order, in ``workers`` processes, with a progress bar on stderr."""
    bar = tqdm(total=len(tasks), desc=desc, mininterval=2.0, unit="item")
    out: list[Any] = []
    if workers <= 1:
        for t in tasks:
            out.append(fn(t))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for r in pool.map(fn, tasks, chunksize=1 if len(tasks) < 200 else 4):
                out.append(r)
                bar.update()
    bar.close()
    return out


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _identities_table(numbers: Iterable[int], seed: int, dataset: str) -> pa.Table:
    rows = [sample_identity(n, seed).as_dict() for n in sorted(set(numbers))]
    for r in rows:
        for key in ("skin", "lip_colour", "hair", "iris"):
            r[key] = list(r[key])
        r["dataset"] = dataset
    return pa.Table.from_pylist(rows)


def write_videos(root: str | Path, cfg: dict, seed: int, workers: int = 1) -> dict:
    """The VoxCeleb-style pretraining videos, ``vox1_meta.csv`` and their per-frame ground truth."""
    root = Path(root)
    video_root = _fresh_dir(root / VIDEO_DIR)
    specs = plan_videos(cfg["identities"], cfg["clips_per_identity"], cfg["utterances_per_clip"],
                        tuple(cfg["duration_s"]), cfg["fps"], seed)
    log.info("rendering %d videos of %d identities (%d frames) with %d workers", len(specs), cfg["identities"],
             sum(s.n_frames for s in specs), workers)
    hold_s = tuple(cfg.get("expression_hold_s", DEFAULT_HOLD_S))
    gts = _run(render_video_task, [(s, cfg["fps"], seed, str(video_root), hold_s) for s in specs], workers, "videos")
    cols = {k: np.concatenate([g[k] for g in gts]) for k in gts[0] if k != "landmarks"}
    table = pa.table({**{k: pa.array(v) for k, v in cols.items()},
                      "path": pa.array(np.concatenate([[f"{VIDEO_DIR}/{s.relpath}"] * s.n_frames for s in specs])),
                      "landmarks": landmarks_array(np.concatenate([g["landmarks"] for g in gts]))})
    prov = provenance("synth_videos", seed, {"synth.videos": cfg})
    write_parquet(table, root / "groundtruth" / "videos.parquet", prov)
    write_parquet(_identities_table([s.identity_number for s in specs], seed, "videos"),
                  root / "groundtruth" / "videos_identities.parquet", prov)
    # vox1_meta.csv: tab-separated, as VoxCeleb1 ships it
    with open(root / VOX_META, "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(["VoxCeleb1 ID", "VGGFace1 ID", "Gender", "Nationality", "Set"])
        seen: set[str] = set()
        for s in specs:
            if s.speaker_id in seen:
                continue
            seen.add(s.speaker_id)
            ident = sample_identity(s.identity_number, seed)
            w.writerow([s.speaker_id, ident.name, "mf"[s.identity_number % 2], "Synthland", "dev"])
    return {"videos": len(specs), "frames": int(table.num_rows)}


def write_affectnet(root: str | Path, cfg: dict, seed: int, workers: int = 1) -> dict:
    """AffectNet-style images, ``training.csv``/``validation.csv`` and the per-image ground truth."""
    out = _fresh_dir(Path(root) / "affectnet")
    plan = plan_affectnet(cfg["train_per_class"], cfg["val_per_class"], cfg["extra_label_fraction"], seed)
    rows = _run(affectnet_task, [(i, c, s, seed, str(out)) for i, (c, s) in enumerate(plan)], workers, "affectnet")
    write_affectnet_lists(out, rows)
    lm = np.stack([r["landmarks"] if r["landmarks"] is not None else np.full((68, 2), np.nan, np.float32)
                   for r in rows])
    names = [CLASSES[r["expression"]] if r["expression"] < len(CLASSES) else
             {8: "none", 9: "uncertain", 10: "no_face"}[r["expression"]] for r in rows]
    table = pa.table({
        "split": [r["split"] for r in rows],
        "subDirectory_filePath": [r["subDirectory_filePath"] for r in rows],
        "path": [f"affectnet/Manually_Annotated_Images/{r['subDirectory_filePath']}" for r in rows],
        "identity": [r["identity"] for r in rows],
        "identity_number": pa.array([r["identity_number"] for r in rows], pa.int64()),
        "expression": pa.array([r["expression"] for r in rows], pa.int64()),
        "expression_name": names,
        "intensity": pa.array([r["intensity"] for r in rows], pa.float32()),
        "valence": pa.array([r["valence"] for r in rows], pa.float32()),
        "arousal": pa.array([r["arousal"] for r in rows], pa.float32()),
        "yaw": pa.array([r["yaw"] for r in rows], pa.float32()),
        "pitch": pa.array([r["pitch"] for r in rows], pa.float32()),
        "roll": pa.array([r["roll"] for r in rows], pa.float32()),
        "has_face": [r["has_face"] for r in rows],
        "landmarks": landmarks_array(lm),
    })
    prov = provenance("synth_affectnet", seed, {"synth.affectnet": cfg})
    write_parquet(table, Path(root) / "groundtruth" / "affectnet.parquet", prov)
    write_parquet(_identities_table([r["identity_number"] for r in rows if r["has_face"]], seed, "affectnet"),
                  Path(root) / "groundtruth" / "affectnet_identities.parquet", prov)
    return {"images": len(rows)}


def write_fer2013(root: str | Path, cfg: dict, seed: int, workers: int = 1) -> dict:
    """FER2013-style ``fer2013.csv`` (48×48 grey) and the per-image ground truth (row order)."""
    _fresh_dir(Path(root) / "fer2013")
    plan = plan_fer2013(cfg["train_per_class"], cfg["test_per_class"], seed)
    items = _run(fer2013_task, [(i, c, u, seed) for i, (c, u) in enumerate(plan)], workers, "fer2013")
    write_fer2013_csv(Path(root) / "fer2013" / "fer2013.csv", items)
    table = pa.table({
        "row": pa.array(np.arange(len(items)), pa.int64()),
        "Usage": [it["usage"] for it in items],
        "emotion": pa.array([it["emotion"] for it in items], pa.int64()),
        "identity": [it["identity"] for it in items],
        "identity_number": pa.array([it["identity_number"] for it in items], pa.int64()),
        "expression": pa.array([it["expression"] for it in items], pa.int64()),
        "expression_name": [CLASSES[it["expression"]] for it in items],
        "intensity": pa.array([it["intensity"] for it in items], pa.float32()),
        "valence": pa.array([it["valence"] for it in items], pa.float32()),
        "arousal": pa.array([it["arousal"] for it in items], pa.float32()),
        "landmarks": landmarks_array(np.stack([it["landmarks"] for it in items])),
    })
    prov = provenance("synth_fer2013", seed, {"synth.fer2013": cfg})
    write_parquet(table, Path(root) / "groundtruth" / "fer2013.parquet", prov)
    write_parquet(_identities_table([it["identity_number"] for it in items], seed, "fer2013"),
                  Path(root) / "groundtruth" / "fer2013_identities.parquet", prov)
    return {"images": len(items)}


def write_lfw(root: str | Path, cfg: dict, seed: int, workers: int = 1) -> dict:
    """LFW-style ``lfw_home/`` (funneled images + pair files) and the per-image ground truth."""
    base = _fresh_dir(Path(root) / "lfw")
    plan = plan_lfw(cfg["people"], cfg["max_images_per_person"], cfg["pairs_per_fold"], cfg["dev_train_pairs"],
                    cfg["dev_test_pairs"], seed)
    names = [sample_identity(IDENTITY_BASE["lfw"] + p, seed).name for p in range(len(plan.counts))]
    pair_files = lfw_pairs(plan, names, cfg["pairs_per_fold"], cfg["dev_train_pairs"], cfg["dev_test_pairs"], seed)
    items = _run(lfw_task, [(i, p, j, c, seed, str(base)) for i, (p, j, c) in enumerate(plan.images)], workers, "lfw")
    for fname, lines in pair_files.items():
        (base / "lfw_home" / fname).write_text("\n".join(lines) + "\n")
    table = pa.table({
        "path": [f"lfw/lfw_home/lfw_funneled/{it['relpath']}" for it in items],
        "identity": [it["identity"] for it in items],
        "identity_number": pa.array([it["identity_number"] for it in items], pa.int64()),
        "image_number": pa.array([it["image_number"] for it in items], pa.int64()),
        "expression": pa.array([it["expression"] for it in items], pa.int64()),
        "expression_name": [CLASSES[it["expression"]] for it in items],
        "intensity": pa.array([it["intensity"] for it in items], pa.float32()),
        "valence": pa.array([it["valence"] for it in items], pa.float32()),
        "arousal": pa.array([it["arousal"] for it in items], pa.float32()),
        "yaw": pa.array([it["pose"].yaw for it in items], pa.float32()),
        "pitch": pa.array([it["pose"].pitch for it in items], pa.float32()),
        "roll": pa.array([it["pose"].roll for it in items], pa.float32()),
        "landmarks": landmarks_array(np.stack([it["landmarks"] for it in items])),
    })
    prov = provenance("synth_lfw", seed, {"synth.lfw": cfg})
    write_parquet(table, Path(root) / "groundtruth" / "lfw.parquet", prov)
    write_parquet(_identities_table([it["identity_number"] for it in items], seed, "lfw"),
                  Path(root) / "groundtruth" / "lfw_identities.parquet", prov)
    return {"people": len(plan.counts), "images": len(items)}


__all__ = ["IDENTITY_BASE", "VIDEO_DIR", "VOX_META", "write_affectnet", "write_fer2013", "write_lfw",
           "write_videos"]
