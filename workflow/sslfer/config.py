"""Configuration: validation against ``config/schema.yaml`` with messages that name the key, and path checks.

:func:`prepare_config` is what the Snakefile calls before any rule is defined, so a bad config stops the
run before any job starts. It (1) reports every schema violation as ``config key 'a.b.c': …``,
(2) fills defaults through :func:`snakemake.utils.validate`, (3) checks that the data paths exist,
except those under ``synth.root``, which the workflow generates itself, and (4) checks the inputs
themselves (:func:`input_errors`): a ``csv`` corpus's header and rows, the files each evaluation dataset's
reader opens (:data:`DATASET_LAYOUTS`), a ``meta`` file's id rows, and the model files of the chosen
backends (:func:`sslfer.model_files.missing_model_files`). Every problem is one message naming
the config key and the file; all of them come in one :class:`ConfigError`.

Listed videos that do not exist are not config errors as long as some do (a partial download is
normal): they are logged here and become manifest rows with status ``missing_file``. A listing in which
none exists is an error (a wrong path or base folder).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def load_schema(path: str | Path) -> dict:
    """Read a YAML JSON-schema file."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def _key(path: Iterator[Any]) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def schema_errors(config: dict, schema: dict) -> list[str]:
    """Every schema violation of ``config`` as a message naming the key (empty list if valid)."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    messages = []
    for err in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        where = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            known = sorted(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - set(known)):
                hint = f" (known keys here: {', '.join(known)})" if known else ""
                messages.append(f"config key '{_key(where + [extra])}': unknown setting{hint}")
        elif err.validator == "required":
            messages.append(f"config key '{_key(where)}': {err.message}")
        else:
            messages.append(f"config key '{_key(where)}': {err.message}")
    return messages


def data_paths(config: dict) -> dict[str, str]:
    """The input paths a run reads, by config key: the configured ``corpus``'s and every dataset's."""
    out: dict[str, str] = {}
    name = config.get("corpus")
    corpus = config.get("corpora", {}).get(name, {})
    for field in ("path", "meta"):
        if field in corpus:
            out[f"corpora.{name}.{field}"] = corpus[field]
    for name, ds in config.get("datasets", {}).items():
        for field in ("path", "data_home"):
            if field in ds:
                out[f"datasets.{name}.{field}"] = ds[field]
    return out


def is_generated(path: str, synth_root: str, base: str | Path = ".") -> bool:
    """True when ``path`` lies under ``synth_root`` (so the workflow writes it; it need not exist yet)."""
    p, root = (Path(base) / path).resolve(), (Path(base) / synth_root).resolve()
    return p == root or root in p.parents


def path_errors(config: dict, base: str | Path = ".") -> list[str]:
    """Missing data paths (relative paths resolve against ``base``), skipping generated ones. Of the corpora,
    only the configured ``corpus`` is checked (:func:`data_paths`): a config file merged over the embedded
    default inherits its ``synth`` corpus, whose files are never built once ``synth.root`` points elsewhere
    (a target under another corpus fails on its own, naming the path: ``corpus_inputs`` in common.smk)."""
    base = Path(base)
    synth_root = config.get("synth", {}).get("root", "resources/synth")
    errors = []
    for key, value in data_paths(config).items():
        if is_generated(value, synth_root, base):
            continue
        if not (base / value).exists():
            errors.append(f"config key '{key}': path '{value}' does not exist")
    corpus = config.get("corpus")
    if corpus is not None and corpus not in config.get("corpora", {}):
        errors.append(f"config key 'corpus': '{corpus}' is not one of corpora ({', '.join(config.get('corpora', {}))})")
    return errors


#: [min, max] settings whose first value must be below the second.
RANGES = (("synth", "videos", "duration_s"), ("synth", "videos", "expression_hold_s"), ("pairs", "positive_s"))


def consistency_errors(config: dict) -> list[str]:
    """Checks across keys: the default variant exists; [min, max] settings of :data:`RANGES` are in order."""
    errors = []
    pre = config.get("pretrain", {})
    if pre.get("variant") not in pre.get("variants", {}):
        errors.append(f"config key 'pretrain.variant': {pre.get('variant')!r} is not a key of pretrain.variants "
                      f"({', '.join(pre.get('variants', {}))})")
    for keys in RANGES:
        value: Any = config
        for k in keys:
            value = value.get(k) if isinstance(value, dict) else None
        if isinstance(value, list) and len(value) == 2 and not value[0] < value[1]:
            errors.append(f"config key '{'.'.join(keys)}': {value} is not a [min, max] range (min must be < max)")
    return errors


#: The files and folders each evaluation dataset's reader (:mod:`sslfer.evaluate.datasets`) opens, by
#: (dataset, format): (config field, [(path under it, "file" | "dir")]); "" is the configured path itself.
DATASET_LAYOUTS: dict[tuple[str, str | None], tuple[str, list[tuple[str, str]]]] = {
    ("affectnet", "affectnet_csv"): ("path", [("Manually_Annotated_file_lists/training.csv", "file"),
                                              ("Manually_Annotated_file_lists/validation.csv", "file"),
                                              ("Manually_Annotated_Images", "dir")]),
    ("affectnet", "affectnet_npy"): ("path", [("train_set", "dir"), ("val_set", "dir")]),
    ("fer2013", "fer2013_csv"): ("path", [("", "file")]),
    ("fer2013", "fer2013_folders"): ("path", [("train", "dir"), ("test", "dir")]),
    ("lfw", None): ("data_home", [("lfw_home/pairs.txt", "file"), ("lfw_home/lfw_funneled", "dir")]),
}
FER2013_COLUMNS = ("emotion", "pixels", "Usage")
#: Missing listed files named in a message (the count is always given).
SHOWN = 5


def _present(value: str, synth_root: str, base: Path) -> Path | None:
    """``base / value`` when it exists and is not generated (the checks of its contents apply), else None."""
    if is_generated(value, synth_root, base):
        return None
    p = base / value
    return p if p.exists() else None


def _csv_corpus_errors(key: str, path: Path) -> list[str]:
    from .preprocess.manifest import missing_listed, read_csv_listing

    try:
        listing = read_csv_listing(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return [f"config key '{key}': {path} cannot be read as a CSV ({type(exc).__name__}: {exc})"]
    errors = [f"config key '{key}': {m}" for m in listing.problems()]
    if errors:
        return errors
    if not listing.rows:
        return [f"config key '{key}': {path} lists no videos (only a header row)"]
    missing = missing_listed(listing)
    if missing:
        shown = ", ".join(f"line {n}: {p}" for n, p in missing[:SHOWN]) + (", …" if len(missing) > SHOWN else "")
        what = f"{path}: {len(missing)} of {len(listing.rows)} listed files do not exist ({shown})"
        if len(missing) == len(listing.rows):
            return [f"config key '{key}': {what}; relative paths are read from the CSV's folder {path.parent}"]
        log.warning("config key '%s': %s; they become manifest rows with status missing_file", key, what)
    return []


def _meta_problem(meta: Path) -> str | None:
    """Why ``meta`` gives no id rows (None when it does)."""
    from .preprocess.manifest import read_meta   # late: it imports the video libraries

    try:
        rows = read_meta(meta)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"{meta} cannot be read ({type(exc).__name__}: {exc})"
    return None if rows else (f"{meta} has no 'idNNNNN<tab>name' rows (vox1_meta.csv is tab-separated: "
                              f"VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set)")


def corpus_errors(config: dict, base: str | Path = ".") -> list[str]:
    """Problems inside the existing, non-generated corpora: the tree is a folder and not empty, a ``csv``
    listing has a ``path,identity`` header, well-formed rows and files that exist, ``meta`` has id rows."""
    base = Path(base)
    synth_root = config.get("synth", {}).get("root", "resources/synth")
    errors = []
    for name, corpus in config.get("corpora", {}).items():
        key, fmt = f"corpora.{name}.path", corpus.get("format")
        path = _present(corpus.get("path", ""), synth_root, base) if "path" in corpus else None
        if path is not None and fmt == "csv":
            errors += ([f"config key '{key}': {path} is a folder; format csv reads a file with columns path,identity"]
                       if path.is_dir() else _csv_corpus_errors(key, path))
        elif path is not None:
            if not path.is_dir():
                errors.append(f"config key '{key}': {path} is a file; format {fmt} reads a folder tree")
            elif next(os.scandir(path), None) is None:
                errors.append(f"config key '{key}': folder {path} is empty")
        meta = _present(corpus["meta"], synth_root, base) if "meta" in corpus else None
        problem = _meta_problem(meta) if meta is not None else None
        if problem:
            errors.append(f"config key 'corpora.{name}.meta': {problem}")
    return errors


def dataset_errors(config: dict, base: str | Path = ".") -> list[str]:
    """Files and folders of :data:`DATASET_LAYOUTS` missing under the existing, non-generated dataset paths
    (one message per dataset, listing all of them), and a ``fer2013.csv`` header without its columns."""
    base = Path(base)
    synth_root = config.get("synth", {}).get("root", "resources/synth")
    errors = []
    for name, ds in config.get("datasets", {}).items():
        layout = DATASET_LAYOUTS.get((name, ds.get("format"))) or DATASET_LAYOUTS.get((name, None))
        if layout is None or layout[0] not in ds:
            continue
        field, entries = layout
        root = _present(ds[field], synth_root, base)
        if root is None:
            continue
        key = f"datasets.{name}.{field}"
        how = f"format {ds['format']}" if "format" in ds else "the layout scikit-learn's LFW loaders read"
        lacking = [f"{rel}{'/' if kind == 'dir' else ''}" for rel, kind in entries
                   if not ((root / rel).is_file() if kind == "file" else (root / rel).is_dir())]
        if lacking == [""]:
            errors.append(f"config key '{key}': {root} is a folder, not a file ({how})")
        elif lacking:
            errors.append(f"config key '{key}': {root} lacks {', '.join(lacking)} ({how})")
        elif ds.get("format") == "fer2013_csv":
            try:
                with open(root, newline="", encoding="utf-8-sig", errors="replace") as fh:
                    header = [h.strip() for h in next(csv.reader(fh), [])]
            except (OSError, csv.Error):
                header = []
            absent = [c for c in FER2013_COLUMNS if c not in header]
            if absent:
                errors.append(f"config key '{key}': {root} line 1: header {','.join(header)[:80] or '(empty file)'} "
                              f"lacks {', '.join(absent)} (expected emotion,pixels,Usage)")
    return errors


def input_errors(config: dict, base: str | Path = ".") -> list[str]:
    """Everything wrong with the inputs themselves: :func:`corpus_errors`, :func:`dataset_errors` and the
    chosen backends' missing model files."""
    from .model_files import missing_model_files

    return corpus_errors(config, base) + dataset_errors(config, base) + missing_model_files(config)


def prepare_config(config: dict, schema_path: str | Path, base: str | Path = ".", check_inputs: bool = True) -> dict:
    """Validate ``config`` in place, fill defaults, check paths and (``check_inputs``) the inputs' contents;
    raise :class:`ConfigError` listing every problem. ``check_inputs=False`` skips the content checks (a job
    process re-reading the Snakefile: the main process checked them)."""
    schema = load_schema(schema_path)
    errors = schema_errors(config, schema)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    from snakemake.utils import validate  # imported late: the package is usable without Snakemake

    validate(config, str(schema_path), set_default=True)
    errors = consistency_errors(config) + path_errors(config, base)
    if check_inputs:
        errors += input_errors(config, base)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return config
