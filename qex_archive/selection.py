"""A selection of runs, ready for analysis: a table (pandas), the density matrices as one
array (numpy, xarray), and the same table written out (``export``).

One row per run: ``run_id``, ``experiment``, ``backend``, ``time`` (timezone-aware), each
parameter as a column ``params.<key>`` (nested keys dotted), and the validation summary
(``purity``, ``entropy``, ``is_valid``, ``trace``) and ``dims``. pandas, xarray and pyarrow are
optional: importing qex never imports them, and a call that needs one says which extra to
install.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import ArchiveError, InvalidInput, QexError
from .run import Run

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .archive import Archive

FIXED_COLUMNS = ("run_id", "experiment", "backend", "time")
SUMMARY_COLUMNS = ("purity", "entropy", "is_valid", "trace", "dims")


class Selection(list[Run]):
    """The runs :meth:`Archive.runs` found: a list of :class:`Run`, with views for analysis."""

    def __init__(self, archive: Archive, runs: Iterable[Run] = ()) -> None:
        super().__init__(runs)
        self._archive = archive

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per run (the columns of :meth:`to_pandas`)."""
        return list(flat_records(self._archive, [run.run_id for run in self]))

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``, one row per run (needs ``qex-archive[analysis]``): the
        columns of :data:`FIXED_COLUMNS`, ``params.*`` (nested keys dotted, as
        ``pandas.json_normalize`` writes them) and :data:`SUMMARY_COLUMNS`; ``time`` in UTC."""
        pd = require("pandas", "analysis")
        from .store import tables

        ids = [run.run_id for run in self]
        by_id = {row[0]: row for row in tables.summary_rows(self._archive.conn, ids)}
        rows = [by_id[run_id] for run_id in ids]
        columns = list(zip(*rows, strict=True)) if rows else [()] * 10
        params = pd.json_normalize([_params_object(text) for text in columns[4]], sep=".")
        params = params[sorted(params.columns)].add_prefix("params.")
        frame = pd.DataFrame(
            {
                "run_id": columns[0],
                "experiment": columns[1],
                "backend": columns[2],
                "time": pd.to_datetime(
                    pd.Series(columns[3], dtype="float64"), unit="s", utc=True, errors="coerce"
                ),
            }
        )
        summary = pd.DataFrame(
            {
                "purity": pd.Series(columns[5], dtype="float64"),
                "entropy": pd.Series(columns[6], dtype="float64"),
                "is_valid": [None if v is None else bool(v) for v in columns[7]],
                "trace": pd.Series(columns[8], dtype="float64"),
                "dims": [json.loads(d) if isinstance(d, str) else None for d in columns[9]],
            }
        )
        return pd.concat([frame, params, summary], axis=1)

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
        the run IDs as the ``run`` coordinate and each parameter, time, experiment and
        purity as coordinates along ``run`` (needs ``qex-archive[analysis]``)."""
        xr = require("xarray", "analysis")
        import numpy as np

        records = self.records()
        data = self.rhos()
        coords: dict[str, Any] = {"run": [r["run_id"] for r in records]}
        for column in columns_of(records):
            if column in ("run_id", "dims"):
                continue
            values = [r.get(column) for r in records]
            if column == "time":
                # numpy has no time zones: local times, as shown everywhere else
                values = [None if v is None else v.replace(tzinfo=None) for v in values]
            coords[column] = ("run", np.asarray(values, dtype=object if None in values else None))
        dims = self[0].dims
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


def flat_records(archive: Archive, run_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The flat row of each run, in the order given, read a chunk of runs at a time."""
    from .store import tables

    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        by_id = {row[0]: row for row in tables.summary_rows(archive.conn, chunk)}
        for run_id in chunk:
            yield flat_record(by_id[run_id])


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


def columns_of(records: Sequence[dict[str, Any]]) -> list[str]:
    """The fixed columns, the parameter columns in sorted order, then the summary."""
    params = sorted({key for record in records for key in record if key.startswith("params.")})
    return [*FIXED_COLUMNS, *params, *SUMMARY_COLUMNS]


def require(module: str, extra: str) -> Any:
    """An optional dependency, or a one-line error naming the extra that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise QexError(
            f"this needs {module}, which is not installed; pip install 'qex-archive[{extra}]'"
        ) from None


def _flatten(prefix: str, value: dict[str, Any], into: dict[str, Any]) -> None:
    for key, item in value.items():
        name = f"{prefix}.{key}"
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
