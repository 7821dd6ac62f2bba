"""The columns of runs as a table: one flat record per run (the seed's columns, each param by
its dotted path, the validation summary, and on request tags, notes and metadata paths), read
a batch at a time; shared by :meth:`Selection.to_pandas <qex_archive.selection.Selection.to_pandas>`
and ``export``, so both give the same columns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._jsonvalues import stored_json
from .errors import InvalidInput

if TYPE_CHECKING:
    from .archive import Archive


FIXED_COLUMNS = ("run_id", "experiment", "backend", "time")


SUMMARY_COLUMNS = ("purity", "entropy", "is_valid", "trace", "dims")


TAG_PREFIX = "tags."


NOTES_COLUMN = "notes"


NOTES_TEXT_COLUMN = "notes.text"


METADATA_PREFIX = "metadata."


NOTE_SEPARATOR = "\n\n"


_CHUNK = 500  # runs whose annotations are read together


def flat_records(
    archive: Archive,
    run_ids: Sequence[str],
    *,
    columns: Sequence[str] = (),
    with_notes: bool = False,
) -> Iterator[dict[str, Any]]:
    """The flat row of each run with its annotations (see :func:`annotated_records`), in the
    order given, read a chunk of runs at a time."""
    from .store import tables

    wanted = checked_columns(columns)
    for start in range(0, len(run_ids), _CHUNK):
        chunk = run_ids[start : start + _CHUNK]
        by_id = {row[0]: row for row in tables.summary_rows(archive.conn, chunk)}
        rows = [by_id[run_id] for run_id in chunk]
        yield from annotated_records(archive, rows, columns=wanted, with_notes=with_notes)


def flat_record(row: Sequence[Any]) -> dict[str, Any]:
    run_id, experiment, backend, timestamp, params_json, purity, entropy, valid, trace, dims = row
    record: dict[str, Any] = {
        "run_id": run_id,
        "experiment": experiment,
        "backend": backend,
        "time": _time(timestamp),
    }
    try:
        params = json.loads(params_json)
    except (TypeError, ValueError):
        params = None
    if isinstance(params, dict):
        _flatten("params", params, record)
    record.update(
        purity=purity,
        entropy=entropy,
        is_valid=None if valid is None else bool(valid),
        trace=trace,
        dims=json.loads(dims) if isinstance(dims, str) else None,
    )
    return record


def columns_of(
    records: Sequence[dict[str, Any]], columns: Sequence[str] = (), *, with_notes: bool = False
) -> list[str]:
    """The fixed columns, the parameter columns in sorted order, the summary, then the
    annotations (:func:`annotation_columns`); ``with_notes`` as the records were made."""
    params = sorted({key for record in records for key in record if key.startswith("params.")})
    with_notes = with_notes or any(NOTES_TEXT_COLUMN in record for record in records)
    annotated = annotation_columns(records, columns, with_notes=with_notes)
    return [*FIXED_COLUMNS, *params, *SUMMARY_COLUMNS, *annotated]


def checked_columns(columns: Sequence[str] | str) -> tuple[str, ...]:
    """The extra columns asked for, each ``metadata.<dotted path>`` or ``tags.<key>``, in the
    order given and each once; :class:`InvalidInput` for anything else."""
    if isinstance(columns, str):
        columns = [columns]
    checked: dict[str, None] = {}
    for column in columns:
        if not isinstance(column, str):
            raise InvalidInput(f"a column is named by text, not {type(column).__name__}")
        for prefix in (METADATA_PREFIX, TAG_PREFIX):
            rest = column[len(prefix) :] if column.startswith(prefix) else ""
            if rest and "" not in (rest.split(".") if prefix == METADATA_PREFIX else [rest]):
                checked[column] = None
                break
        else:
            raise InvalidInput(
                f"column {column!r} is not one to ask for: give 'metadata.<dotted path>' "
                "(e.g. metadata.fit.chi2) or 'tags.<key>'; params, tags and notes are always "
                "there"
            )
    return tuple(checked)


def annotation_cells(
    archive: Archive,
    run_ids: Sequence[str],
    *,
    columns: Sequence[str] = (),
    with_notes: bool = False,
) -> dict[str, dict[str, Any]]:
    """The annotation cells of each run, ``{run_id: {column: value}}``: its ``tags.<key>``
    (only the keys it carries, and the ``tags.<key>`` of ``columns``, ``None`` if it lacks
    them), ``notes``, ``notes.text`` with ``with_notes``, and each ``metadata.*`` column of
    ``columns``. Read a few queries per 500 runs (tags, notes or their count, metadata if
    asked for)."""
    from .store import annotation_tables, tables

    wanted = checked_columns(columns)
    paths = [column for column in wanted if column.startswith(METADATA_PREFIX)]
    forced = [column for column in wanted if column.startswith(TAG_PREFIX)]
    tags = annotation_tables.tags_by_run(archive.conn, run_ids)
    notes = annotation_tables.notes_by_run(archive.conn, run_ids) if with_notes else None
    counts = None if notes is not None else annotation_tables.note_counts(archive.conn, run_ids)
    metadata = tables.metadata_by_run(archive.conn, run_ids) if paths else {}
    found: dict[str, dict[str, Any]] = {}
    for run_id in run_ids:
        cells: dict[str, Any] = dict.fromkeys(forced)
        cells.update((TAG_PREFIX + key, value) for key, value in tags[run_id].items())
        if notes is not None:
            texts = [note["text"] for note in notes[run_id]]
            cells[NOTES_COLUMN] = len(texts)
            cells[NOTES_TEXT_COLUMN] = NOTE_SEPARATOR.join(texts) if texts else None
        else:
            assert counts is not None
            cells[NOTES_COLUMN] = counts[run_id]
        if paths:
            cells.update(metadata_cells(metadata.get(run_id), paths))
        found[run_id] = cells
    return found


def annotated_records(
    archive: Archive,
    rows: Iterable[Sequence[Any]],
    *,
    columns: Sequence[str] = (),
    with_notes: bool = False,
) -> Iterator[dict[str, Any]]:
    """:func:`flat_record` of each summary row (``tables.summary_rows`` or
    ``tables.iter_summary_rows``) with the run's annotation cells added (:func:`annotation_cells`),
    streamed: the annotations are read for 500 rows at a time, in the order of ``rows``."""
    wanted = checked_columns(columns)
    batch: list[Sequence[Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _CHUNK:
            yield from _annotated(archive, batch, wanted, with_notes)
            batch = []
    if batch:
        yield from _annotated(archive, batch, wanted, with_notes)


def _annotated(
    archive: Archive, rows: list[Sequence[Any]], wanted: Sequence[str], with_notes: bool
) -> Iterator[dict[str, Any]]:
    found = annotation_cells(
        archive, [row[0] for row in rows], columns=wanted, with_notes=with_notes
    )
    for row in rows:
        record = flat_record(row)
        record.update(found[row[0]])
        yield record


def annotation_columns(
    records: Iterable[dict[str, Any]], columns: Sequence[str] = (), *, with_notes: bool = False
) -> list[str]:
    """The annotation columns of these records (or cells), in their order: ``tags.<key>``
    sorted (every key a record carries, and those of ``columns``), ``notes``, ``notes.text``
    with ``with_notes``, then the ``metadata.*`` columns in the order of ``columns``."""
    wanted = checked_columns(columns)
    tags = {column for column in wanted if column.startswith(TAG_PREFIX)}
    tags.update(key for record in records for key in record if key.startswith(TAG_PREFIX))
    notes = [NOTES_COLUMN, NOTES_TEXT_COLUMN] if with_notes else [NOTES_COLUMN]
    paths = [column for column in wanted if column.startswith(METADATA_PREFIX)]
    return [*sorted(tags), *notes, *paths]


def annotation_kinds(
    archive: Archive,
    where: str,
    args: Sequence[Any],
    *,
    columns: Sequence[str] = (),
    with_notes: bool = False,
) -> dict[str, set[str]]:
    """Every annotation column of the runs matching a WHERE clause (``RunFilter.sql``), in
    the order of :func:`annotation_columns`, with the kinds of value it holds (see
    :func:`value_kind`): what a writer needs before its first row (CSV its header, Parquet
    its schema). One query for the tag keys, one pass over the metadata if ``metadata.*``
    columns are asked for."""
    from .store import annotation_tables, tables

    wanted = checked_columns(columns)
    keys = [TAG_PREFIX + key for key in annotation_tables.tag_keys(archive.conn, where, args)]
    kinds: dict[str, set[str]] = {}
    for column in annotation_columns([dict.fromkeys(keys)], wanted, with_notes=with_notes):
        if column.startswith(TAG_PREFIX) or column == NOTES_TEXT_COLUMN:
            kinds[column] = {"text", "null"}
        elif column == NOTES_COLUMN:
            kinds[column] = {"integer"}
        else:
            kinds[column] = set()
    paths = [column for column in wanted if column.startswith(METADATA_PREFIX)]
    if paths:
        for text in tables.iter_metadata(archive.conn, where, args):
            for column, value in metadata_cells(text, paths).items():
                kinds[column].add(value_kind(value))
    return kinds


def metadata_cells(metadata_json: object, columns: Sequence[str]) -> dict[str, Any]:
    """The value at each ``metadata.<dotted path>`` of ``columns`` in a run's stored metadata
    text, ``None`` where it has none (or its metadata is not a JSON object). A path step is
    a key (a key with dots in it is found too: the longest key that fits is tried first) or,
    in a list, an index."""
    value = stored_json(metadata_json)
    cells: dict[str, Any] = {}
    for column in columns:
        parts = column[len(METADATA_PREFIX) :].split(".")
        found = _at_path(value, parts) if isinstance(value, dict) else _MISSING
        cells[column] = None if found is _MISSING else found
    return cells


def value_kind(value: Any) -> str:
    """``null``, ``bool``, ``integer``, ``real``, ``text`` or ``json`` (a list or dict)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    return "text" if isinstance(value, str) else "json"


_MISSING = object()


def _at_path(value: Any, parts: list[str]) -> Any:
    if not parts:
        return value
    if isinstance(value, dict):
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in value:
                found = _at_path(value[key], parts[n:])
                if found is not _MISSING:
                    return found
        return _MISSING
    if isinstance(value, list) and parts[0].isdigit() and int(parts[0]) < len(value):
        return _at_path(value[int(parts[0])], parts[1:])
    return _MISSING


def param_column(path: Sequence[str]) -> str:
    """The column of the param at ``path`` (its keys, outermost first): ``params.`` and the
    keys joined by dots, each key's own dots and backslashes escaped with a backslash, so
    that two params never share a column (``["mw.freq"]`` gives ``params.mw\\.freq``,
    ``["mw", "freq"]`` gives ``params.mw.freq``)."""
    return ".".join(["params", *map(_column_key, path)])


def _column_key(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")


def flat_params(params: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    _flatten("params", params, flat)
    return flat


def _flatten(prefix: str, value: dict[str, Any], into: dict[str, Any]) -> None:
    for key, item in value.items():
        name = f"{prefix}.{_column_key(str(key))}"
        if isinstance(item, dict) and item:
            _flatten(name, item, into)
        else:
            into[name] = item


def _time(timestamp: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(timestamp)).astimezone()  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def params_object(text: object) -> dict[str, Any]:
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
