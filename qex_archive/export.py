"""``export``: a selection of runs written as CSV, JSON Lines or Parquet, the columns of
``Selection.to_pandas()``, streamed from SQLite a chunk of rows at a time so that a million
runs are written in bounded memory. Parquet needs pyarrow (``qex-archive[analysis]``).

CSV is read by spreadsheets, which run a cell starting with ``=``, ``+``, ``-`` or ``@`` (or a
tab or carriage return) as a formula: a text cell starting so (a name, a param, a tag or a
note from someone's bundle) is written with a single quote before it, as OWASP advises
("CSV injection"); numbers stay numbers (``-0.5`` is written as it is). JSON Lines and Parquet
keep every text exactly. The output is refused inside the archive's directory or over one of
its files (:func:`~qex_archive.store.paths.refuse_archive_output`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ._columns import (
    FIXED_COLUMNS,
    SUMMARY_COLUMNS,
    annotated_records,
    annotation_kinds,
    checked_columns,
    flat_record,
    value_kind,
)
from .errors import InvalidInput
from .selection import require
from .store import annotation_tables, tables
from .store.files import atomic_output
from .store.paths import refuse_archive_output
from .store.query import RunFilter, order_by

if TYPE_CHECKING:
    from .archive import Archive

FORMATS = ("csv", "jsonl", "parquet")
BATCH = 10_000


@dataclass(frozen=True)
class ExportReport:
    path: Path
    runs: int
    columns: list[str]


def export_runs(
    archive: Archive,
    selection: RunFilter,
    output: str | os.PathLike[str],
    *,
    format: str | None = None,
    sort: str | None = None,
    reverse: bool = False,
    columns: Sequence[str] = (),
    with_notes: bool = False,
) -> ExportReport:
    """Write the selected runs to ``output`` (format from ``format`` or the file's suffix).
    The file appears whole or not at all."""
    wanted = checked_columns(columns)
    target = Path(output)
    chosen = format or target.suffix.lstrip(".").lower()
    if chosen not in FORMATS:
        raise InvalidInput(f"export format {chosen!r} is not one of {', '.join(FORMATS)}")
    refuse_archive_output(archive.root, target, what="the export")
    if target.is_dir() or not target.parent.is_dir():
        raise InvalidInput(f"cannot write {target}: give a file in an existing directory")
    # a damaged row must not stop the stream
    where, args = selection.sql(
        damaged_json=True, rare_tags=annotation_tables.rare_tags(archive.conn, selection.tags)
    )
    kinds = _param_kinds(tables.iter_params(archive.conn, where, args))
    extra = annotation_kinds(archive, where, args, columns=wanted, with_notes=with_notes)
    header = [*FIXED_COLUMNS, *sorted(kinds), *SUMMARY_COLUMNS, *extra]
    kinds.update(extra)
    rows = tables.iter_summary_rows(archive.conn, where, order_by(sort, reverse), args)
    records = annotated_records(archive, rows, columns=wanted, with_notes=with_notes)
    if chosen == "parquet":
        pa = require("pyarrow", "analysis")
        require("pyarrow.parquet", "analysis")
    with atomic_output(target) as stream:
        if chosen == "csv":
            count = _write_csv(stream, records, header)
        elif chosen == "jsonl":
            count = _write_jsonl(stream, records)
        else:
            count = _write_parquet(stream, records, header, kinds, pa)
    return ExportReport(target, count, header)


def _param_kinds(params: Iterator[Any]) -> dict[str, set[str]]:
    """Every ``params.*`` column of the selection, with the kinds of value it holds (a first
    pass: CSV needs its header, Parquet its schema, before the first row)."""
    kinds: dict[str, set[str]] = {}
    for text in params:
        record = flat_record((None, None, None, None, text, None, None, None, None, None))
        for column, value in record.items():
            if column.startswith("params."):
                kinds.setdefault(column, set()).add(value_kind(value))
    return kinds


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> str:
    """:func:`_cell`, with a text a spreadsheet would take for a formula made inert."""
    text = _cell(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def _write_csv(stream: BinaryIO, records: Iterator[dict[str, Any]], columns: list[str]) -> int:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text)
    writer.writerow([_csv_cell(column) for column in columns])
    count = 0
    for record in records:
        writer.writerow([_csv_cell(record.get(column)) for column in columns])
        count += 1
    text.flush()
    text.detach()
    return count


def _write_jsonl(stream: BinaryIO, records: Iterator[dict[str, Any]]) -> int:
    count = 0
    for record in records:
        record["time"] = _cell(record["time"]) or None
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        stream.write(line.encode() + b"\n")
        count += 1
    return count


def _write_parquet(
    stream: BinaryIO,
    records: Iterator[dict[str, Any]],
    columns: list[str],
    param_types: dict[str, set[str]],
    pa: Any,
) -> int:
    import pyarrow.parquet as pq

    fields = []
    for column in columns:
        fields.append(pa.field(column, _arrow_type(column, param_types, pa)))
    schema = pa.schema(fields)
    count = 0
    with pq.ParquetWriter(stream, schema) as writer:
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append(_arrow_values(record, schema))
            if len(batch) == BATCH:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
                batch = []
        if batch or not count:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def _arrow_type(column: str, param_types: dict[str, set[str]], pa: Any) -> Any:
    fixed = {
        "run_id": pa.string(),
        "experiment": pa.string(),
        "backend": pa.string(),
        "time": pa.timestamp("us", tz="UTC"),
        "purity": pa.float64(),
        "entropy": pa.float64(),
        "is_valid": pa.bool_(),
        "trace": pa.float64(),
        "dims": pa.list_(pa.int64()),
    }
    if column in fixed:
        return fixed[column]
    kinds = param_types.get(column, set()) - {"null"}
    if kinds == {"integer"}:
        return pa.int64()
    if kinds and kinds <= {"integer", "real"}:
        return pa.float64()
    if kinds == {"bool"}:
        return pa.bool_()
    return pa.string()  # text, or mixed kinds: JSON text for anything not a string


def _arrow_values(record: dict[str, Any], schema: Any) -> dict[str, Any]:
    import pyarrow as pa

    values: dict[str, Any] = {}
    for field in schema:
        value = record.get(field.name)
        if field.name == "time" and value is not None:
            value = value.astimezone(timezone.utc)
        elif field.type == pa.string() and value is not None and not isinstance(value, str):
            value = _cell(value)
        elif field.type == pa.float64() and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        values[field.name] = value
    return values
