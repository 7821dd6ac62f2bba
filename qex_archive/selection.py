"""A selection of runs, ready for analysis: a table (pandas), the density matrices as one
array (numpy, xarray), and the same table written out (``export``).

One row per run: ``run_id``, ``experiment``, ``backend``, ``time`` (timezone-aware), each
parameter as a column ``params.<key>`` (nested keys dotted; a dot or backslash inside a key is
escaped with a backslash, so that every column names one value: ``{"mw.freq": 5.1}`` is
``params.mw\\.freq`` and ``{"mw": {"freq": 4.9}}`` is ``params.mw.freq``, see
:func:`param_column`; an empty object is a value of its own), the validation summary
(``purity``, ``entropy``, ``is_valid``, ``trace``) and ``dims``, then the annotations:

- ``tags.<key>`` for each tag key some run of the selection carries: the run's value (``""``
  for a plain mark) or missing (``None``) for a run without that tag, so ``df[df["tags.figure"]
  == "2"]`` is the runs tagged ``figure=2``;
- ``notes``: how many notes the run has (0 for none); with ``with_notes=True`` also
  ``notes.text``, the texts oldest first joined by a blank line (:data:`NOTE_SEPARATOR`), or
  ``None`` for a run without notes;
- on request (``columns=["metadata.fit.chi2", ...]``), ``metadata.<dotted path>``: the value
  at that path of the run's own metadata (dict keys, and list indices as numbers), or
  ``None`` where the run has none. ``columns`` may also name ``tags.<key>`` to have that
  column even when no run carries the tag.

:func:`annotated_records`, :func:`annotation_columns` and :func:`annotation_kinds` are the
one implementation of these columns: ``to_pandas`` and ``export`` both use them. pandas,
xarray and pyarrow are optional: importing qex never imports them, and a call that needs one
says which extra to install.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._jsonvalues import stored_json
from .errors import ArchiveError, InvalidInput, QexError
from .run import Run

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .archive import Archive

FIXED_COLUMNS = ("run_id", "experiment", "backend", "time")
SUMMARY_COLUMNS = ("purity", "entropy", "is_valid", "trace", "dims")
TAG_PREFIX = "tags."
NOTES_COLUMN = "notes"
NOTES_TEXT_COLUMN = "notes.text"
METADATA_PREFIX = "metadata."
NOTE_SEPARATOR = "\n\n"
_CHUNK = 500  # runs whose annotations are read together


class Selection(list[Run]):
    """The runs :meth:`Archive.runs` found: a list of :class:`Run`, with views for analysis."""

    def __init__(self, archive: Archive, runs: Iterable[Run] = ()) -> None:
        super().__init__(runs)
        self._archive = archive

    def records(
        self, columns: Sequence[str] = (), *, with_notes: bool = False
    ) -> list[dict[str, Any]]:
        """One flat dict per run (the columns of :meth:`to_pandas`, with the same
        ``columns`` and ``with_notes``)."""
        ids = [run.run_id for run in self]
        return list(flat_records(self._archive, ids, columns=columns, with_notes=with_notes))

    def to_pandas(self, columns: Sequence[str] = (), *, with_notes: bool = False) -> Any:
        """A ``pandas.DataFrame``, one row per run (needs ``qex-archive[analysis]``): the
        columns of :data:`FIXED_COLUMNS`, ``params.*`` (nested keys dotted, as
        ``pandas.json_normalize`` writes them), :data:`SUMMARY_COLUMNS`, then ``tags.<key>``
        (value, or missing), ``notes`` (a count), ``notes.text`` with ``with_notes=True`` and
        the ``metadata.<dotted path>`` columns asked for in ``columns`` (see the module's
        docstring); ``time`` in UTC.

        Example: ``df = arch.runs().to_pandas(columns=["metadata.fit.chi2"])``, then
        ``df[df["tags.figure"] == "2"]``."""
        pd = require("pandas", "analysis")
        from .store import tables

        wanted = checked_columns(columns)
        ids = [run.run_id for run in self]
        by_id = {row[0]: row for row in tables.summary_rows(self._archive.conn, ids)}
        rows = [by_id[run_id] for run_id in ids]
        columns_ = list(zip(*rows, strict=True)) if rows else [()] * 10
        flat = [_flat_params(_params_object(text)) for text in columns_[4]]
        params = pd.DataFrame.from_records(flat, index=range(len(flat)))
        params = params[sorted(params.columns)]
        frame = pd.DataFrame(
            {
                "run_id": columns_[0],
                "experiment": columns_[1],
                "backend": columns_[2],
                "time": pd.to_datetime(
                    pd.Series(columns_[3], dtype="float64"), unit="s", utc=True, errors="coerce"
                ),
            }
        )
        summary = pd.DataFrame(
            {
                "purity": pd.Series(columns_[5], dtype="float64"),
                "entropy": pd.Series(columns_[6], dtype="float64"),
                "is_valid": [None if v is None else bool(v) for v in columns_[7]],
                "trace": pd.Series(columns_[8], dtype="float64"),
                "dims": [json.loads(d) if isinstance(d, str) else None for d in columns_[9]],
            }
        )
        found = annotation_cells(self._archive, ids, columns=wanted, with_notes=with_notes)
        cells = [found[run_id] for run_id in ids]
        annotated = pd.DataFrame(
            {
                name: _series(pd, name, [cell.get(name) for cell in cells])
                for name in annotation_columns(cells, wanted, with_notes=with_notes)
            },
            index=frame.index,
        )
        return pd.concat([frame, params, summary, annotated], axis=1)

    def rhos(self) -> npt.NDArray[np.complex128]:
        """The density matrices stacked into one array ``(runs, d, d)``: each read once from
        its memory map into the result (one copy). All runs must have the same dimension."""
        import numpy as np

        if not self:
            raise InvalidInput("the selection is empty: no density matrices to stack")
        shapes = {run.run_id: _shape(run) for run in self}
        first = next(iter(shapes.values()))
        if any(shape != first for shape in shapes.values()):
            shown = ", ".join(f"{run_id[:8]} {s[0]}x{s[1]}" for run_id, s in shapes.items())
            raise InvalidInput(f"the runs have different dimensions ({shown}); select equal ones")
        stacked = np.empty((len(self), *first), dtype=np.complex128)
        for index, run in enumerate(self):
            _read_into(run, stacked[index])
        return stacked

    def to_xarray(self) -> Any:
        """The density matrices as one ``xarray.DataArray`` with dimensions (run, row, col),
        the run IDs as the ``run`` coordinate and every column of :meth:`to_pandas` (params,
        time, experiment, purity, tags, notes, ...) as a coordinate along ``run``; ``row`` and
        ``col`` are labelled with the basis states, big-endian as the archive: ``"00"``,
        ``"01"``, ``"10"``, ``"11"`` for two qubits, mixed-radix digits for qudits
        (``dims=[3, 2]``: ``"00"``, ``"01"``, ``"10"``, ... ``"21"``; digits separated by
        commas when a subsystem has more than 10 levels). Needs ``qex-archive[analysis]``.

        ``time`` is timezone-aware UTC, the same values as the ``time`` column of
        :meth:`to_pandas`: numpy's ``datetime64``, xarray's own time type, has no time zone,
        so the coordinate holds ``pandas.Timestamp`` objects in UTC (dtype ``object``; its
        ``attrs["timezone"]`` is ``"UTC"``; ``pandas.DatetimeIndex(array.time.values)`` makes
        an index of them). The runs must share their subsystem dimensions."""
        xr = require("xarray", "analysis")
        pd = require("pandas", "analysis")

        records = self.records()
        data = self.rhos()
        dims = _shared_dims(self, data.shape[1])
        labels = basis_labels(dims)
        coords: dict[str, Any] = {
            "run": [r["run_id"] for r in records],
            "row": labels,
            "col": labels,
        }
        for column in columns_of(records):
            if column in ("run_id", "dims"):
                continue
            values = [r.get(column) for r in records]
            if column == "time":
                times = [None if v is None else pd.Timestamp(v).tz_convert("UTC") for v in values]
                coords[column] = ("run", _coordinate(times), {"timezone": "UTC"})
            else:
                coords[column] = ("run", _coordinate(values))
        return xr.DataArray(
            data,
            dims=("run", "row", "col"),
            coords=coords,
            name="rho",
            attrs={"subsystem_dims": json.dumps(dims), "ordering": "big_endian"},
        )

    def _repr_html_(self) -> str:
        from .views.notebook import selection_html

        return selection_html(self)

    def __repr__(self) -> str:
        return f"<Selection of {len(self)} runs>"


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


# -- the annotation columns: tags, notes and the user's metadata (to_pandas and export) --------


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
    from .store import tables

    wanted = checked_columns(columns)
    paths = [column for column in wanted if column.startswith(METADATA_PREFIX)]
    forced = [column for column in wanted if column.startswith(TAG_PREFIX)]
    tags = tables.tags_by_run(archive.conn, run_ids)
    notes = tables.notes_by_run(archive.conn, run_ids) if with_notes else None
    counts = None if notes is not None else tables.note_counts(archive.conn, run_ids)
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
    from .store import tables

    wanted = checked_columns(columns)
    keys = [TAG_PREFIX + key for key in tables.tag_keys(archive.conn, where, args)]
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


def basis_labels(dims: Sequence[int]) -> list[str]:
    """The basis states of subsystems ``dims``, big-endian (subsystem 0 the leftmost digit):
    ``["00", "01", "10", "11"]`` for two qubits, mixed-radix digits for qudits, the digits
    separated by commas when a subsystem has more than 10 levels."""
    import itertools

    separator = "," if any(d > 10 for d in dims) else ""
    return [
        separator.join(str(digit) for digit in digits)
        for digits in itertools.product(*(range(d) for d in dims))
    ]


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


def _series(pd: Any, column: str, values: list[Any]) -> Any:
    """A column of annotation cells: notes counted in integers, a metadata column of numbers
    as numbers (floats, missing ones NaN, when any is a float or missing), else objects."""
    if column == NOTES_COLUMN:
        return pd.Series(values, dtype="int64")
    numbers = [v for v in values if v is not None]
    if (
        column.startswith(METADATA_PREFIX)
        and numbers
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
    ):
        exact = len(numbers) == len(values) and all(isinstance(v, int) for v in numbers)
        return pd.Series(values, dtype="int64" if exact else "float64")
    return pd.Series(values, dtype=object)


def _coordinate(values: list[Any]) -> Any:
    """A 1-d coordinate of these values: numbers and text as numpy types them, anything else
    (None among them, lists, dicts, timestamps) as an object array of the values as they are."""
    import numpy as np

    if all(isinstance(v, (bool, int, float, str)) for v in values) and values:
        kinds = {
            bool if isinstance(v, bool) else str if isinstance(v, str) else float for v in values
        }
        if len(kinds) == 1:
            return np.asarray(values)
    array = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        array[index] = value
    return array


def _shared_dims(runs: Sequence[Run], d: int) -> list[int]:
    """The subsystem dimensions all ``runs`` (of dimension ``d``) share; a run without dims
    recorded is qubits when ``d`` is a power of two, else one system."""
    found: dict[str, list[int]] = {}
    for run in runs:
        dims = run.dims
        usable = dims is not None and all(isinstance(n, int) and n >= 2 for n in dims)
        if dims is None or not usable or _product(dims) != d:
            dims = [2] * (d.bit_length() - 1) if d & (d - 1) == 0 and d >= 2 else [d]
        found[run.run_id] = dims
    shared = next(iter(found.values()))
    if any(dims != shared for dims in found.values()):
        shown = ", ".join(f"{run_id[:8]} {dims}" for run_id, dims in found.items())
        raise InvalidInput(
            f"the runs have different subsystem dimensions ({shown}); select equal ones"
        )
    return shared


def _product(dims: Sequence[int]) -> int:
    result = 1
    for n in dims:
        result *= n
    return result


def require(module: str, extra: str) -> Any:
    """An optional dependency, or a one-line error naming the extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise QexError(
            f"this needs {module}, which is not installed; pip install 'qex-archive[{extra}]'"
        ) from None


def param_column(path: Sequence[str]) -> str:
    """The column of the param at ``path`` (its keys, outermost first): ``params.`` and the
    keys joined by dots, each key's own dots and backslashes escaped with a backslash, so
    that two params never share a column (``["mw.freq"]`` gives ``params.mw\\.freq``,
    ``["mw", "freq"]`` gives ``params.mw.freq``)."""
    return ".".join(["params", *map(_column_key, path)])


def _column_key(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")


def _flat_params(params: dict[str, Any]) -> dict[str, Any]:
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


def _params_object(text: object) -> dict[str, Any]:
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _read_into(run: Run, target: Any) -> None:
    """The run's matrix read straight into ``target`` (no memory map: a map holds a file
    descriptor, and ten thousand of them pass the usual limit of open files)."""
    from .store.npyfile import (
        NpyFormatError,
        check_data_size,
        check_density_matrix_header,
        read_header,
    )
    from .store.paths import open_data_file

    where = run.density_matrix_path
    try:
        with open_data_file(run.archive.root, where) as stream:
            header = read_header(stream)
            check_density_matrix_header(header)
            check_data_size(header, os.fstat(stream.fileno()).st_size)
            if header.shape != target.shape:
                raise NpyFormatError(f"holds a {header.shape} matrix, its run says {target.shape}")
            view = memoryview(target).cast("B")
            if stream.readinto(view) != view.nbytes:
                raise NpyFormatError("ends before its data does")
    except FileNotFoundError:
        raise ArchiveError(f"{where} is missing; run 'qex-archive check'") from None
    except NpyFormatError as exc:
        raise ArchiveError(f"{where} cannot be read: {exc}; run 'qex-archive check'") from None


def _shape(run: Run) -> tuple[int, int]:
    shape = run.state_info.get("shape")
    if isinstance(shape, list) and len(shape) == 2:
        return int(shape[0]), int(shape[1])
    rows, columns = run.rho.shape
    return int(rows), int(columns)
