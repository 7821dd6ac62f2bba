"""Experiment reports: one self-contained page per selection of runs, with the same frame and
safety as the Bloch page (no scripts, no network, every text escaped).

A header (experiments, backends, run count, time span, which parameters vary), plots as inline
SVG (purity, entropy and fidelity to a reference run or a target state, against the parameter
that varies, grouped by a second one with a legend), and a table of the runs linking to their
Bloch pages. Up to :data:`TABLE_MAX` runs are listed (the plots show every run), so that a
report of many runs stays small enough to mail (sizes measured in benchmarks/README.md).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jsonvalues import dumps
from .._timeutil import iso_local
from ..errors import ArchiveError, InvalidInput
from .html import esc, page
from .values import format_params, format_tags, number, run_params, short_value, verdict

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..physics.states import State
    from ..run import Run

    # a target state: an array (state vector or density matrix), a .npy file of one, a State
    TargetState = State | str | os.PathLike[str] | npt.ArrayLike

TABLE_MAX = 1000
LABELLED_POINTS = 2000
WIDTH, HEIGHT = 430, 250
MARGIN = {"left": 58, "right": 14, "top": 14, "bottom": 44}
COLORS = ("#2563eb", "#c2410c", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#92400e")
# the default grouping is a param with at most this many values (one colour each)
DEFAULT_GROUPS_MAX = len(COLORS)
STYLE = """
.plots{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;border:1px solid #dde2e8;border-radius:6px;padding:8px}
figcaption{font-size:13px;color:#3e4754;margin-bottom:4px}
.frame{fill:none;stroke:#b4bcc8} .grid{stroke:#eef1f5}
.tick{font-size:11px;fill:#3e4754} .label{font-size:12px;fill:#1d2430;text-anchor:middle}
.legend{font-size:12px;fill:#1d2430}
td.text{text-align:left}
"""


@dataclass(frozen=True)
class Point:
    run_id: str
    x: float
    y: float
    group: str


def report_page(
    runs: Sequence[Run],
    *,
    x: str | None = None,
    by: str | None = None,
    ref: Run | None = None,
    ref_state: TargetState | None = None,
    page_dir: Path | None = None,
    link: Callable[[Run], str | None] | None = None,
) -> bytes:
    """The report of ``runs`` as HTML bytes; links to Bloch pages are made relative to
    ``page_dir`` (where the page will be written), or by ``link`` (a run's href, or None),
    and left out without either.

    ``x`` is the param along the x axis (default: the varying numeric one with the most
    values); ``by`` groups the points, in one colour each with a legend (default: another
    param that varies, the one with the fewest values, if it has at most
    :data:`DEFAULT_GROUPS_MAX`). The fidelity is to ``ref`` (a run; default: the first), or to
    ``ref_state``: a target state as an array (state vector or density matrix), the path of a
    ``.npy`` file holding one (read without pickle), or a physics ``State``."""
    from ..physics.measures import NonPhysicalWarning, fidelity

    runs = list(runs)
    if not runs:
        raise InvalidInput("no runs to report on; check the filters with 'qex-archive runs'")
    if ref is not None and ref_state is not None:
        raise InvalidInput("give a reference run or a target state for the fidelity, not both")
    target = None if ref_state is None else target_state(ref_state)
    params = [run_params(run) or {} for run in runs]
    varying = _varying(params)
    x_key = x if x is not None else _default_x(params, varying, by)
    if x_key is not None and all(x_key not in p for p in params):
        raise InvalidInput(f"no run has the param {x_key!r}; params: {', '.join(varying) or '-'}")
    if by is None:
        by = _default_by(params, varying, x_key)
    reference = ref or min(runs, key=lambda r: (r.timestamp, r.run_id))  # the first
    compared_to: object = reference if target is None else target
    fidelities: dict[str, float | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPhysicalWarning)  # the table says which are invalid
        for run in runs:
            same = (
                run.dims == reference.dims
                if target is None
                else math.prod(run.dims or [0]) == target.rho.shape[0]
            )
            try:
                fidelities[run.run_id] = fidelity(run, compared_to) if same else None
            except (ArchiveError, InvalidInput):
                fidelities[run.run_id] = None
    xs, categories = _x_values(runs, params, x_key)
    groups = [_group(p, by) for p in params]
    body = [
        f"<h1>{esc(_title(runs))}</h1>",
        f'<div class="sub">report of {len(runs)} run{"s" * (len(runs) != 1)}</div>',
        _header(runs, params, varying),
        '<div class="plots">',
    ]
    x_label = x_key or "run (in time order)"
    for title, values in (
        ("purity", [run.validation.get("purity") for run in runs]),
        (
            "von Neumann entropy (bits)",
            [run.validation.get("von_neumann_entropy_bits") for run in runs],
        ),
        (
            f"fidelity to {reference.run_id[:8] if target is None else target.name}"
            + (" (runs of its dimension)" if None in fidelities.values() else ""),
            [fidelities[run.run_id] for run in runs],
        ),
    ):
        points = [
            Point(run.run_id, xv, float(yv), group)
            for run, xv, yv, group in zip(runs, xs, values, groups, strict=True)
            if isinstance(yv, (int, float)) and math.isfinite(yv) and xv is not None
        ]
        body.append(_figure(title, points, x_label, categories, by))
    body.append("</div>")
    body.append(_table(runs, params, varying, fidelities, link or _archive_link(page_dir)))
    data = {
        "runs": [
            {
                "run_id": run.run_id,
                "x": xv,
                "group": group,
                "purity": run.validation.get("purity"),
                "entropy": run.validation.get("von_neumann_entropy_bits"),
                "fidelity_to_reference": fidelities[run.run_id],
            }
            for run, xv, group in zip(runs, xs, groups, strict=True)
        ],
        "x": x_key,
        "by": by,
        "reference": reference.run_id if target is None else None,
        "reference_state": None if target is None else target.name,
    }
    return page(_title(runs), body, style=STYLE, data=data)


def write_reports(
    runs: Sequence[Run],
    output: Path,
    *,
    one_page: bool,
    x: str | None = None,
    by: str | None = None,
    ref: Run | None = None,
    ref_state: TargetState | None = None,
) -> list[Path]:
    """Write the report of ``runs`` to the file ``output`` (``one_page``), or one report per
    experiment into the directory ``output``; each page appears whole or not at all. The
    options are those of :func:`report_page`."""
    from ..store.files import atomic_write, storage_faults

    if ref is not None and ref_state is not None:
        raise InvalidInput("give a reference run or a target state for the fidelity, not both")
    target = None if ref_state is None else target_state(ref_state)  # read once for all pages

    if one_page:
        pages = {output: list(runs)}
    else:
        by_experiment: dict[str, list[Run]] = {}
        for run in runs:
            by_experiment.setdefault(run.experiment_name, []).append(run)
        pages = {output / f"{_slug(name)}.html": group for name, group in by_experiment.items()}
    written = []
    with storage_faults("write the report"):
        for path, group in sorted(pages.items()):
            path.parent.mkdir(parents=True, exist_ok=True)
            content = report_page(
                group, x=x, by=by, ref=ref, ref_state=target, page_dir=path.parent
            )
            atomic_write(path, [content])
            written.append(path)
    return written


def target_state(value: TargetState) -> State:
    """A target state for the fidelity: a ``State`` as it is, a path (``str`` or
    ``os.PathLike``) read as a ``.npy`` file without pickle and named by its file name, or an
    array (a state vector or a density matrix, of any dimension)."""
    from ..physics.states import State, as_state
    from ..store.npyfile import load_user_npy

    if isinstance(value, State):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        return as_state(load_user_npy(path), name=path.name, need_dims=False)
    return as_state(value, name="the target state", need_dims=False)


def _title(runs: Sequence[Run]) -> str:
    names = sorted({run.experiment_name for run in runs})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _varying(params: Sequence[dict[str, Any]]) -> list[str]:
    keys = sorted({key for p in params for key in p})
    return [key for key in keys if len({dumps(p.get(key)) for p in params}) > 1]


def _default_x(params: Sequence[dict[str, Any]], varying: list[str], by: str | None) -> str | None:
    """The varying numeric parameter with the most distinct values (not the grouping one)."""
    candidates = []
    for key in varying:
        values = [p.get(key) for p in params]
        if key != by and all(_plot_value(v) is not None for v in values if v is not None):
            candidates.append((len({dumps(v) for v in values}), key))
    return max(candidates)[1] if candidates else None


def _default_by(
    params: Sequence[dict[str, Any]], varying: list[str], x_key: str | None
) -> str | None:
    """The varying param other than the x axis with the fewest values (the first by name of
    those as few), when it has few enough for a colour each: what the points are grouped by
    when ``by`` is not given."""
    candidates = []
    for key in varying:
        count = len({dumps(p.get(key)) for p in params})
        if key != x_key and count <= DEFAULT_GROUPS_MAX:
            candidates.append((count, key))
    return min(candidates)[1] if candidates else None


def _plot_value(value: object) -> float | None:
    """A param value as a place on an axis: finite numbers only (not booleans)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _x_values(
    runs: Sequence[Run], params: Sequence[dict[str, Any]], key: str | None
) -> tuple[list[float | None], list[str] | None]:
    """Numbers to plot along x, and the category names when the values are not numbers."""
    if key is None:
        order = sorted(range(len(runs)), key=lambda i: (runs[i].timestamp, runs[i].run_id))
        position = {index: float(rank) for rank, index in enumerate(order)}
        return [position[i] for i in range(len(runs))], None
    values = [p.get(key) for p in params]
    numbers = [_plot_value(v) for v in values]
    if all(n is not None or v is None for n, v in zip(numbers, values, strict=True)):
        return numbers, None
    names = sorted({dumps(v) for v in values if v is not None})
    return [None if v is None else float(names.index(dumps(v))) for v in values], names


def _group(params: dict[str, Any], by: str | None) -> str:
    if by is None:
        return ""
    return f"{by}={short_value(params[by])}" if by in params else f"{by} not set"


def _header(runs: Sequence[Run], params: Sequence[dict[str, Any]], varying: list[str]) -> str:
    experiments = sorted({run.experiment_name for run in runs})
    backends = sorted({run.backend_name for run in runs})
    first = min(runs, key=lambda r: r.timestamp).timestamp
    last = max(runs, key=lambda r: r.timestamp).timestamp
    constant = {
        key: params[0][key]
        for key in sorted(params[0])
        if key not in varying and all(key in p for p in params)
    }
    rows = [
        ("experiments", ", ".join(experiments)),
        ("backends", ", ".join(backends)),
        ("runs", str(len(runs))),
        ("time span", f"{iso_local(first)} .. {iso_local(last)}"),
        ("params that vary", ", ".join(varying) or "none"),
        ("the same in all", format_params(constant, short=True) or "-"),
    ]
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.ceil(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _figure(
    title: str, points: list[Point], x_label: str, categories: list[str] | None, by: str | None
) -> str:
    plot_w = WIDTH - MARGIN["left"] - MARGIN["right"]
    plot_h = HEIGHT - MARGIN["top"] - MARGIN["bottom"]
    groups = sorted({p.group for p in points})
    legend_h = 16 * len(groups) if by else 0
    svg = [
        f'<svg class="plot" width="{WIDTH}" height="{HEIGHT + legend_h}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT + legend_h}" role="img" aria-label="{esc(title)}">'
    ]
    if not points:
        svg.append(f'<text class="label" x="{WIDTH / 2}" y="{HEIGHT / 2}">no values</text></svg>')
        return f"<figure><figcaption>{esc(title)}</figcaption>{''.join(svg)}</figure>"
    x_low, x_high = min(p.x for p in points), max(p.x for p in points)
    y_low, y_high = min(p.y for p in points), max(p.y for p in points)
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 0.05, y_high + 0.05
    pad_x, pad_y = (x_high - x_low) * 0.04, (y_high - y_low) * 0.06
    x_low, x_high, y_low, y_high = x_low - pad_x, x_high + pad_x, y_low - pad_y, y_high + pad_y

    def sx(value: float) -> float:
        return MARGIN["left"] + (value - x_low) / (x_high - x_low) * plot_w

    def sy(value: float) -> float:
        return MARGIN["top"] + (y_high - value) / (y_high - y_low) * plot_h

    left, top, bottom = MARGIN["left"], MARGIN["top"], MARGIN["top"] + plot_h
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        svg.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        svg.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{number(tick, '.6g')}</text>"
        )
    x_ticks = (
        [(float(i), name) for i, name in enumerate(categories)]
        if categories is not None
        else [(t, number(t, ".6g")) for t in _ticks(x_low, x_high)]
    )
    for value, text in x_ticks[:12]:
        x = sx(value)
        svg.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom}"/>')
        svg.append(
            f'<text class="tick" x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">'
            f"{esc(text[:14])}</text>"
        )
    svg.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>')
    svg.append(
        f'<text class="label" x="{left + plot_w / 2}" y="{bottom + 36}">{esc(x_label)}</text>'
    )
    color = {group: COLORS[i % len(COLORS)] for i, group in enumerate(groups)}
    # a hover label costs bytes on every point: a large plot goes without, to keep the page small
    labelled = len(points) <= LABELLED_POINTS
    for point in points:
        label = f"<title>{point.run_id[:8]}: {number(point.y, '.6g')}</title>" if labelled else ""
        svg.append(
            f'<circle class="pt" cx="{sx(point.x):.1f}" cy="{sy(point.y):.1f}" r="3.2" '
            f'fill="{color[point.group]}">{label}</circle>'
        )
    if by:
        for i, group in enumerate(groups):
            y = HEIGHT + 12 + 16 * i
            svg.append(f'<circle cx="{left + 6}" cy="{y - 4}" r="4" fill="{color[group]}"/>')
            svg.append(f'<text class="legend" x="{left + 16}" y="{y}">{esc(group)}</text>')
    svg.append("</svg>")
    return f"<figure><figcaption>{esc(title)}</figcaption>{''.join(svg)}</figure>"


def _table(
    runs: Sequence[Run],
    params: Sequence[dict[str, Any]],
    varying: list[str],
    fidelities: dict[str, float | None],
    link: Callable[[Run], str | None],
) -> str:
    order = sorted(range(len(runs)), key=lambda i: (runs[i].timestamp, runs[i].run_id))
    head = ["run", "time", *varying, "purity", "entropy", "physical", "fidelity", "tags", "page"]
    rows = []
    for index in order[:TABLE_MAX]:
        run = runs[index]
        validation = run.validation
        href = link(run)
        anchor = f'<a href="{esc(href)}">Bloch</a>' if href else ""
        cells = [
            f'<td class="text">{esc(run.run_id[:8])}</td>',
            f'<td class="text">{esc(iso_local(run.timestamp))}</td>',
            *(f"<td>{esc(short_value(params[index].get(key)))}</td>" for key in varying),
            f"<td>{number(validation.get('purity'))}</td>",
            f"<td>{number(validation.get('von_neumann_entropy_bits'))}</td>",
            f"<td>{verdict(validation.get('is_valid'))}</td>",
            f"<td>{number(fidelities.get(run.run_id))}</td>",
            f'<td class="text">{esc(format_tags(run.tags))}</td>',
            f"<td>{anchor}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"
    more = ""
    if len(runs) > TABLE_MAX:
        more = (
            f'<p class="note">The table lists the first {TABLE_MAX:,} of {len(runs):,} runs in '
            "time order; the plots show them all. Narrow the selection for the rest.</p>"
        )
    return f"<h2>Runs</h2>{more}<table>{header}{''.join(rows)}</table>"


def _archive_link(page_dir: Path | None) -> Callable[[Run], str | None]:
    """Links from a page in ``page_dir`` to each run's Bloch page in its archive, for pages
    that exist there as files of the archive's own."""
    from ..store.paths import ForeignFile, stat_data_file

    def link(run: Run) -> str | None:
        artifact = next((a for a in run.artifacts if a.name == "bloch"), None)
        if page_dir is None or artifact is None:
            return None
        try:
            present = stat_data_file(run.archive.root, artifact.relative_path)
        except ForeignFile:
            return None
        if present is None:
            return None
        return os.path.relpath(artifact.path, page_dir).replace(os.sep, "/")

    return link


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "experiment"
