"""Human-readable summary of a Parquet artifact: rows, schema, provenance, status/label counts."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from .parquet import read_provenance

#: Columns whose value counts are worth printing when present.
COUNT_COLUMNS = ("status", "expression_name", "split", "Usage", "dataset")


def describe(path: str | Path) -> str:
    """Rows, columns with types, provenance and value counts of the count-worthy columns."""
    path = Path(path)
    pf = pq.ParquetFile(path)
    lines = [f"{path}: {pf.metadata.num_rows} rows, {pf.metadata.num_row_groups} row group(s)", "schema:"]
    for field in pf.schema_arrow:
        lines.append(f"  {field.name}: {field.type}")
    prov = read_provenance(path)
    lines.append("provenance: " + (json.dumps(prov, indent=2, sort_keys=True).replace("\n", "\n  ") if prov else "none"))
    present = [c for c in COUNT_COLUMNS if c in pf.schema_arrow.names]
    if present:
        table = pf.read(columns=present)
        for c in present:
            counts = pc.value_counts(table.column(c)).to_pylist()
            pretty = ", ".join(f"{d['values']}: {d['counts']}" for d in sorted(counts, key=lambda d: str(d["values"])))
            lines.append(f"{c} counts: {pretty}")
    return "\n".join(lines)
