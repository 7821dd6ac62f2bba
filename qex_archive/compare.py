"""Runs side by side: what differs in their parameters, how their states relate (pairwise
fidelity and trace distance) and each qubit's Bloch vector, as data (``to_dict``) and as text."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._jsonvalues import dumps
from ._timeutil import iso_local
from .errors import ArchiveError, InvalidInput
from .views.terminal import styled, visible
from .views.values import number, run_params, run_validation, verdict

if TYPE_CHECKING:
    from .run import Run

MISSING = object()


@dataclass
class Comparison:
    runs: list[Run]
    same_params: dict[str, Any]  # keys every run has, with the same value
    differing_params: list[str]  # keys whose values differ, or that some runs lack
    dims: list[list[int] | None]
    fidelity: list[list[float]] | None = None  # None when the dimensions differ
    trace_distance: list[list[float]] | None = None
    bloch: list[list[list[float] | None]] | None = None  # run -> qubit -> (x, y, z)
    non_physical: list[str] = field(default_factory=list)  # run IDs used as stored, flagged
    problems: list[str] = field(default_factory=list)  # why a part could not be computed

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [
                {
                    "run_id": run.run_id,
                    "experiment_name": run.experiment_name,
                    "backend_name": run.backend_name,
                    "timestamp": run.timestamp,
                    "time": iso_local(run.timestamp),
                    "dims": dims,
                    "params": run_params(run),
                    "validation": run_validation(run),
                }
                for run, dims in zip(self.runs, self.dims, strict=True)
            ],
            "same_params": self.same_params,
            "differing_params": self.differing_params,
            "fidelity": self.fidelity,
            "trace_distance": self.trace_distance,
            "bloch_vectors": self.bloch,
            "non_physical": self.non_physical,
            "problems": self.problems,
        }


def compare_runs(runs: Sequence[Run]) -> Comparison:
    """Compare two or more runs. States of different dimensions are compared by their
    parameters only, and ``problems`` says why."""

    from .physics.measures import (
        NonPhysicalWarning,
        bloch_vectors,
        fidelity,
        physical_problem,
        trace_distance,
    )

    runs = list(runs)
    if len(runs) < 2:
        raise InvalidInput("compare needs at least two runs")
    params = [run_params(run) or {} for run in runs]
    keys = sorted({key for p in params for key in p})
    same, differing = {}, []
    for key in keys:
        values = [p.get(key, MISSING) for p in params]
        first = values[0]
        if first is not MISSING and all(_same(value, first) for value in values[1:]):
            same[key] = first
        else:
            differing.append(key)
    dims = [run.dims for run in runs]
    comparison = Comparison(runs, same, differing, dims)
    if any(d != dims[0] for d in dims) or dims[0] is None:
        shown = ", ".join(f"{run.run_id[:8]} {d}" for run, d in zip(runs, dims, strict=True))
        comparison.problems.append(f"the states have different dimensions ({shown})")
        return comparison
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonPhysicalWarning)  # listed in non_physical
            n = len(runs)
            comparison.fidelity = [[1.0] * n for _ in range(n)]
            comparison.trace_distance = [[0.0] * n for _ in range(n)]
            for i in range(n):
                for j in range(i + 1, n):
                    f = fidelity(runs[i], runs[j])
                    t = trace_distance(runs[i], runs[j])
                    comparison.fidelity[i][j] = comparison.fidelity[j][i] = f
                    comparison.trace_distance[i][j] = comparison.trace_distance[j][i] = t
            comparison.bloch = [bloch_vectors(run) for run in runs]
            comparison.non_physical = [run.run_id for run in runs if physical_problem(run)]
    except ArchiveError as exc:  # a damaged or missing .npy
        comparison.fidelity = comparison.trace_distance = comparison.bloch = None
        comparison.problems.append(str(exc))
    return comparison


def comparison_text(
    comparison: Comparison, highlight: Callable[[str], str] = lambda text: text
) -> str:
    """A table for people: a column per run; differing values passed through ``highlight``.

    Stored text (names, parameters) is made visible (:func:`~qex_archive.views.terminal.visible`)
    before ``highlight`` styles it, so the result keeps the highlight's escapes and only
    those: printed through the CLI's terminal filter, qex's bold stays bold."""
    runs = comparison.runs
    header = ["", *(run.run_id[:8] for run in runs)]
    rows: list[list[str]] = [
        ["experiment", *(run.experiment_name for run in runs)],
        ["backend", *(run.backend_name for run in runs)],
        ["time", *(iso_local(run.timestamp) for run in runs)],
        ["dims", *(str(d) if d is not None else "?" for d in comparison.dims)],
    ]
    marks: set[tuple[int, int]] = set()
    for label in ("experiment", "backend", "dims"):
        row = next(r for r in rows if r[0] == label)
        if len(set(row[1:])) > 1:
            marks.update((rows.index(row), c) for c in range(1, len(row)))
    for key in comparison.differing_params:
        values = []
        for run in runs:
            value = (run_params(run) or {}).get(key, MISSING)
            values.append("—" if value is MISSING else dumps(value))
        rows.append([f"  {key}", *values])
        marks.update((len(rows) - 1, c) for c in range(1, len(runs) + 1))
    for label, fn in (("purity", "purity"), ("entropy (bits)", "von_neumann_entropy_bits")):
        rows.append([label, *(number(run_validation(run).get(fn)) for run in runs)])
    rows.append(["physical", *(verdict(run_validation(run).get("is_valid")) for run in runs)])
    header = [visible(cell) for cell in header]
    rows = [[visible(cell) for cell in row] for row in rows]
    width = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]

    def line(cells: list[str], row_index: int | None = None) -> str:
        out = []
        for c, cell in enumerate(cells):
            padded = cell.ljust(width[c])
            out.append(highlight(padded) if (row_index, c) in marks else padded)
        return "  ".join(out).rstrip()

    lines = [line(header), *(line(row, i) for i, row in enumerate(rows))]
    if comparison.same_params:
        same = " ".join(f"{k}={dumps(v)}" for k, v in comparison.same_params.items())
        lines.append(visible(f"same in all: {same}"))
    for title, matrix in (
        ("fidelity", comparison.fidelity),
        ("trace distance", comparison.trace_distance),
    ):
        if matrix is not None:
            lines.append("")
            lines.append(title)
            names = [run.run_id[:8] for run in runs]
            lines.append("          " + "  ".join(name.rjust(8) for name in names))
            for name, row_values in zip(names, matrix, strict=True):
                lines.append(f"{name}  " + "  ".join(f"{v:8.6f}" for v in row_values))
    if comparison.bloch is not None and any(v is not None for v in comparison.bloch[0]):
        lines.append("")
        lines.append("Bloch vectors (x, y, z) of each qubit's reduced state")
        for k in range(len(comparison.bloch[0])):
            cells = [_vector(vectors[k]) for vectors in comparison.bloch]
            lines.append(f"  qubit {k}  " + "  ".join(cells))
    if comparison.non_physical:
        shown = ", ".join(run_id[:8] for run_id in comparison.non_physical)
        lines.append(f"note: not physical, used as stored: {shown}")
    lines.extend(visible(f"note: {problem}") for problem in comparison.problems)
    return styled("\n".join(lines))


def _vector(vector: list[float] | None) -> str:
    if vector is None:
        return "(qudit)".ljust(24)
    x, y, z = (round(value, 3) + 0.0 for value in vector)  # no "-0.000"
    return f"({x:+.3f}, {y:+.3f}, {z:+.3f})"


def _same(a: object, b: object) -> bool:
    return a is not MISSING and b is not MISSING and dumps(a) == dumps(b)
