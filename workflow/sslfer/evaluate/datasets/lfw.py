"""LFW: the verification pairs of ``pairs.txt`` and the people-identification set.

LFW is read with scikit-learn's own loaders (``fetch_lfw_pairs(subset="10_folds")`` and
``fetch_lfw_people``, ``download_if_missing=False``, full 250×250 colour images: ``slice_=None``,
``resize=1.0``; our detector and aligner then frame the face like the pretraining crops). They return
float32 arrays of the whole set at once and cache them, zlib-compressed, under ``<data_home>/lfw_home/joblib``
(the compression is most of the loading time). So each call gets a throw-away ``data_home`` in a scratch folder whose ``lfw_home`` links to the
real person folders and holds one chunk of pair lines or people (memory: ``LFW_CHUNK_IMAGES`` full-size float32 images),
and the loaders' joblib cache is switched off for the call (``joblib.Memory(location=None)``, the
documented no-cache memory): the user's data folder is never written to (it may be read-only), and
nothing is compressed only to be thrown away. Pair images are deduplicated by (person, image number) as
named in ``pairs.txt``;
``pairs`` (one row per line of ``pairs.txt``) keeps the fold structure: ``pairs.txt`` starts with
``<folds> <n>`` and holds, per fold, n same-person then n different-person lines. scikit-learn's people
loader returns no file names (it shuffles its rows with a fixed seed), so people items are named by the
person and the image's rank among that person's rows, which is stable for the same data.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa

from .items import EvalDataset, Rows, Source, finish

LFW_PAIR_FILES = ("pairsDevTrain.txt", "pairsDevTest.txt", "pairs.txt")
LFW_CHUNK_IMAGES = 256


@dataclass(frozen=True)
class PairLine:
    """One line of an LFW pair file: its line number, fold, same-person flag and the two (name, number)."""

    line: int
    fold: int
    same: bool
    a: tuple[str, int]
    b: tuple[str, int]

    def text(self) -> str:
        """The line, tab-separated as scikit-learn parses it."""
        if self.same:
            return f"{self.a[0]}\t{self.a[1]}\t{self.b[1]}"
        return f"{self.a[0]}\t{self.a[1]}\t{self.b[0]}\t{self.b[1]}"


def parse_lfw_pairs(path: str | Path) -> list[PairLine]:
    """Lines of ``pairs.txt`` (header ``<folds> <n>``, then per fold n same + n different lines) or of a
    View-1 file (header ``<n>``: one fold). A file that contradicts its header raises (the folds are lost)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    head = lines[0].split() if lines else []
    if len(head) not in (1, 2) or not all(h.isdigit() for h in head):
        raise ValueError(f"{path} line 1: expected '<folds> <pairs per fold>' or '<pairs>', got {lines[:1]}")
    folds, n = (1, int(head[0])) if len(head) == 1 else (int(head[0]), int(head[1]))
    body = [(i + 2, ln.split()) for i, ln in enumerate(lines[1:]) if ln.strip()]
    if len(body) != folds * 2 * n:
        raise ValueError(f"{path}: header says {folds} fold(s) of {n} + {n} pairs, found {len(body)} pair lines")
    out = []
    for k, (ln, f) in enumerate(body):
        try:
            if len(f) == 3:
                out.append(PairLine(ln, k // (2 * n), True, (f[0], int(f[1])), (f[0], int(f[2]))))
            elif len(f) == 4:
                out.append(PairLine(ln, k // (2 * n), False, (f[0], int(f[1])), (f[2], int(f[3]))))
            else:
                raise ValueError(f"{len(f)} fields, expected 3 or 4")
        except ValueError as exc:
            raise ValueError(f"{path} line {ln}: {exc}") from exc
    return out


def _no_cache(*_args: Any, **_kwargs: Any) -> Any:
    """Stand-in for the ``joblib.Memory`` that scikit-learn's LFW loaders build: a memory that caches nothing."""
    import joblib

    return joblib.Memory(location=None, verbose=0)


@contextlib.contextmanager
def _sklearn_home(funneled: Path, people: list[str], pair_lines: list[str],
                  scratch: str | Path | None) -> Iterator[str]:
    """A throw-away ``data_home`` whose ``lfw_home`` links to ``people``'s folders and holds ``pair_lines``
    as ``pairs.txt``; the loaders' joblib cache is off meanwhile (kept if scikit-learn stops naming it
    ``Memory``, which costs time only)."""
    from sklearn.datasets import _lfw

    no_cache = mock.patch.object(_lfw, "Memory", _no_cache) if hasattr(_lfw, "Memory") else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="lfw-stage-", dir=scratch) as tmp, no_cache:
        home = Path(tmp) / "lfw_home"
        (home / "lfw_funneled").mkdir(parents=True)
        for name in people:
            os.symlink((funneled / name).absolute(), home / "lfw_funneled" / name, target_is_directory=True)
        for fname in LFW_PAIR_FILES:
            (home / fname).write_text("".join(f"{ln}\n" for ln in pair_lines) if fname == "pairs.txt" else "")
        yield tmp


def _uint8(img: np.ndarray) -> np.ndarray:
    """scikit-learn's float image (values/255) → contiguous uint8 RGB."""
    return np.ascontiguousarray(np.clip(np.rint(np.asarray(img) * 255.0), 0, 255).astype(np.uint8))


def _chunks(seq: list, size: int) -> Iterator[list]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def _people_chunks(people: list[str], counts: dict[str, int], max_images: int) -> Iterator[list[str]]:
    """People in order, grouped so that a group holds at most ``max_images`` images (or one person)."""
    group: list[str] = []
    for name in people:
        if group and sum(counts[p] for p in group) + counts[name] > max_images:
            yield group
            group = []
        group.append(name)
    if group:
        yield group


def read_lfw(data_home: str | Path, min_faces_per_person: int = 4, scratch: str | Path | None = None,
             chunk_images: int = LFW_CHUNK_IMAGES) -> EvalDataset:
    """LFW through scikit-learn's loaders: the unique images of ``pairs.txt`` (role ``pairs``) with the
    pairs table, and every image of the people with at least ``min_faces_per_person`` images (role
    ``people``). ``scratch`` holds the throw-away ``data_home`` of each loader call (default: system temp)."""
    from sklearn.datasets import fetch_lfw_pairs, fetch_lfw_people

    lfw_home = Path(data_home) / "lfw_home"
    funneled = lfw_home / "lfw_funneled"
    if not funneled.is_dir() or not (lfw_home / "pairs.txt").is_file():
        raise FileNotFoundError(f"config datasets.lfw.data_home: {lfw_home} lacks lfw_funneled/ or pairs.txt "
                                f"(the layout scikit-learn's fetch_lfw_pairs/fetch_lfw_people read)")
    files = {name: sorted(os.listdir(funneled / name)) for name in sorted(os.listdir(funneled))
             if (funneled / name).is_dir()}                  # scikit-learn's own listing rule
    pair_lines = parse_lfw_pairs(lfw_home / "pairs.txt")
    rows = Rows({"role": pa.string()})
    index: dict[tuple[str, int], int] = {}
    for pl in pair_lines:
        for name, num in (pl.a, pl.b):
            if (name, num) in index:
                continue
            found = name in files and 1 <= num <= len(files[name])
            index[(name, num)] = rows.add(
                f"{name}_{num:04d}", f"pairs.txt line {pl.line}", path=str(funneled / name / files[name][num - 1])
                if found else None, identity=name.replace("_", " "), status="ok" if found else "missing_image",
                error=None if found else f"pairs.txt line {pl.line}: {funneled / name} has no image number {num}",
                role="pairs")
    people = [name for name, f in files.items() if len(f) >= max(min_faces_per_person, 1)]
    people_rows = {name: [rows.add(f"people/{name}/{k:04d}", f"lfw_funneled/{name}", identity=name.replace("_", " "),
                                   role="people") for k in range(len(files[name]))] for name in people}
    items = rows.table()
    status, ids = items.column("status").to_pylist(), items.column("item_id").to_pylist()
    pairs = pa.table({
        "pair": pa.array(np.arange(len(pair_lines)), pa.int64()),
        "line": pa.array([pl.line for pl in pair_lines], pa.int64()),
        "fold": pa.array([pl.fold for pl in pair_lines], pa.int64()),
        "same": pa.array([pl.same for pl in pair_lines], pa.bool_()),
        "item_a": pa.array([ids[index[pl.a]] for pl in pair_lines], pa.string()),
        "item_b": pa.array([ids[index[pl.b]] for pl in pair_lines], pa.string()),
        "row_a": pa.array([index[pl.a] for pl in pair_lines], pa.int64()),
        "row_b": pa.array([index[pl.b] for pl in pair_lines], pa.int64()),
    })
    usable = [pl for pl in pair_lines if status[index[pl.a]] == "ok" and status[index[pl.b]] == "ok"]
    loader = dict(funneled=True, resize=1.0, color=True, slice_=None, download_if_missing=False)

    def sources() -> Iterator[Source]:
        done: set[int] = set()
        for chunk in _chunks(usable, max(chunk_images // 2, 1)):
            names = sorted({pl.a[0] for pl in chunk} | {pl.b[0] for pl in chunk})
            try:
                with _sklearn_home(funneled, names, [pl.text() for pl in chunk], scratch) as home:
                    bunch = fetch_lfw_pairs(subset="10_folds", data_home=home, **loader)
            except (OSError, ValueError) as exc:
                why = f"pairs.txt lines {chunk[0].line}–{chunk[-1].line}: scikit-learn's fetch_lfw_pairs failed: {exc}"
                for r in dict.fromkeys(index[k] for pl in chunk for k in (pl.a, pl.b)):
                    if r not in done:
                        done.add(r)
                        yield r, None, why
                continue
            if bunch.target.tolist() != [int(pl.same) for pl in chunk]:
                raise RuntimeError(f"fetch_lfw_pairs returned targets that contradict pairs.txt lines "
                                   f"{chunk[0].line}–{chunk[-1].line}")
            for k, pl in enumerate(chunk):
                for side, key in enumerate((pl.a, pl.b)):
                    r = index[key]
                    if r not in done:
                        done.add(r)
                        yield r, _uint8(bunch.pairs[k, side]), None
        folder = {name.replace("_", " "): name for name in people}
        for group in _people_chunks(people, {p: len(files[p]) for p in people}, chunk_images):
            try:
                with _sklearn_home(funneled, group, [], scratch) as home:
                    bunch = fetch_lfw_people(data_home=home, min_faces_per_person=min_faces_per_person, **loader)
            except (OSError, ValueError) as exc:
                why = f"people {group[0]} … {group[-1]}: scikit-learn's fetch_lfw_people failed: {exc}"
                for name in group:
                    yield from ((r, None, why) for r in people_rows[name])
                continue
            rank: Counter = Counter()
            for img, t in zip(bunch.images, bunch.target):
                name = folder[str(bunch.target_names[t])]
                yield people_rows[name][rank[name]], _uint8(img), None
                rank[name] += 1
            if any(rank[name] != len(people_rows[name]) for name in group):
                raise RuntimeError(f"fetch_lfw_people returned other image counts than lfw_funneled/ lists for "
                                   f"people {group[0]} … {group[-1]}")

    return finish(EvalDataset("lfw", items, sources, pairs=pairs,
                               counts={"pairs": len(pair_lines), "pairs_usable": len(usable),
                                       "folds": len({pl.fold for pl in pair_lines}), "people": len(people)}))
