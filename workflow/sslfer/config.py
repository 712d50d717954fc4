"""Configuration: validation against ``config/schema.yaml`` with messages that name the key, and path checks.

:func:`prepare_config` is what the Snakefile calls before any rule is defined, so a bad config stops the
run before any job starts. It (1) reports every schema violation as ``config key 'a.b.c': …``,
(2) fills defaults through :func:`snakemake.utils.validate`, and (3) checks that the data paths exist,
except those under ``synth.root``, which the workflow generates itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml


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
    """The configured input paths, by config key."""
    out: dict[str, str] = {}
    for name, corpus in config.get("corpora", {}).items():
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
    """Missing data paths (relative paths resolve against ``base``), skipping generated ones."""
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


def prepare_config(config: dict, schema_path: str | Path, base: str | Path = ".") -> dict:
    """Validate ``config`` in place, fill defaults, check paths; raise :class:`ConfigError` on any problem."""
    schema = load_schema(schema_path)
    errors = schema_errors(config, schema)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    from snakemake.utils import validate  # imported late: the package is usable without Snakemake

    validate(config, str(schema_path), set_default=True)
    errors = consistency_errors(config) + path_errors(config, base)
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return config
