"""A selection of runs, ready for analysis: a table (pandas), the density matrices as one
array (numpy, xarray), and the same table written out (``export``).

One row per run: ``run_id``, ``experiment``, ``backend``, ``time`` (timezone-aware), each
parameter as a column ``params.<key>`` (nested keys dotted; a dot or backslash inside a key is
escaped with a backslash, so that every column names one value: ``{"mw.freq": 5.1}`` is
``params.mw\\.freq`` and ``{"mw": {"freq": 4.9}}`` is ``params.mw.freq``, see
:func:`~qex_archive._columns.param_column`; an empty object is a value of its own), the
validation summary
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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ._columns import (
    METADATA_PREFIX,
    NOTES_COLUMN,
    annotation_cells,
    annotation_columns,
    checked_columns,
    columns_of,
    flat_params,
    flat_records,
    params_object,
)
from .errors import ArchiveError, InvalidInput, QexError
from .run import Run

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .archive import Archive


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
        flat = [flat_params(params_object(text)) for text in columns_[4]]
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


# -- the annotation columns: tags, notes and the user's metadata (to_pandas and export) --------


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
