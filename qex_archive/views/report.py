"""Experiment reports: one self-contained page per selection of runs, with the same frame and
safety as the Bloch page (no scripts, no network, every text escaped).

A header (experiments, backends, run count, time span, which parameters vary), plots as inline
SVG (purity, entropy and fidelity to a reference run or a target state, against the parameter
that varies, grouped by a second one with a legend), and a table of the runs linking to their
Bloch pages. Up to :data:`TABLE_MAX` runs are listed (the plots show every run), so that a
report of many runs stays small enough to mail (sizes measured in benchmarks/README.md).

Whatever the archive holds, a page is bounded: at most :data:`PARAM_COLUMNS_MAX` param
columns and :data:`NAMES_MAX` names in a list (a note says how many more), every text cut at
:data:`TEXT_MAX` characters, at most :data:`LEGEND_MAX` legend entries (both in
:mod:`.plot`), a few ticks per axis (computed by count, never by stepping until a bound is
passed), and axes that stay finite
and non-empty for any finite values (equal ones, neighbours such as 1e16 and 1e16 + 2, or
+-1.7e308). The time and size grow linearly with the runs and their params, and the links
to Bloch pages follow the one trust rule (:func:`.html.may_show`): a page imported from
someone's bundle is never linked.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jsonvalues import dumps
from .._timeutil import iso_local
from ..errors import ArchiveError, InvalidInput
from .html import esc, may_show, page
from .plot import COLORS, TEXT_MAX, Point, figure
from .plot import clip as _clip
from .values import format_tags, number, run_params, run_validation, short_value, verdict

if TYPE_CHECKING:
    import numpy.typing as npt

    from ..physics.states import State
    from ..run import Run

    # a target state: an array (state vector or density matrix), a .npy file of one, a State
    TargetState = State | str | os.PathLike[str] | npt.ArrayLike

TABLE_MAX = 1000
PARAM_COLUMNS_MAX = 16  # param columns of the table (the x and grouping params first)
NAMES_MAX = 40  # names in a list of the header (experiments, params that vary, ...)
# the default grouping is a param with at most this many values (one colour each)
DEFAULT_GROUPS_MAX = len(COLORS)
STYLE = """
.plots{display:flex;flex-wrap:wrap;gap:18px}
figure{margin:0;border:1px solid #dde2e8;border-radius:6px;padding:8px}
figcaption{font-size:13px;color:#3e4754;margin-bottom:4px}
.frame{fill:none;stroke:#b4bcc8} .grid{stroke:#eef1f5}
.tick{font-size:11px;fill:#3e4754} .label{font-size:12px;fill:#1d2430;text-anchor:middle}
.legend{font-size:12px;fill:#1d2430} .more{font-size:12px;color:#5a6472}
td.text{text-align:left}
"""


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
    columns = _Columns(params)
    varying = columns.varying
    x_key = x if x is not None else _default_x(columns, by)
    if x_key is not None and x_key not in columns.counts:
        shown = _names(varying) or "-"
        raise InvalidInput(f"no run has the param {_clip(x_key)!r}; params: {shown}")
    if by is None:
        by = _default_by(columns, x_key)
    validations = {run.run_id: run_validation(run) for run in runs}
    reference = ref or min(runs, key=lambda r: (r.timestamp, r.run_id))  # the first
    compared_to: object = reference if target is None else target
    fidelities: dict[str, float | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPhysicalWarning)  # the table says which are invalid
        for run in runs:
            dims = _dims(run)
            same = (
                dims == _dims(reference)
                if target is None
                else math.prod(dims or [0]) == target.rho.shape[0]
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
        _header(runs, columns),
        '<div class="plots">',
    ]
    x_label = _clip(x_key) if x_key is not None else "run (in time order)"
    for title, values in (
        ("purity", [validations[run.run_id].get("purity") for run in runs]),
        (
            "von Neumann entropy (bits)",
            [validations[run.run_id].get("von_neumann_entropy_bits") for run in runs],
        ),
        (
            f"fidelity to {_clip(reference.run_id[:8] if target is None else target.name)}"
            + (" (runs of its dimension)" if None in fidelities.values() else ""),
            [fidelities[run.run_id] for run in runs],
        ),
    ):
        points = [
            Point(run.run_id, xv, y, group)
            for run, xv, y, group in zip(runs, xs, map(_plot_value, values), groups, strict=True)
            if y is not None and xv is not None
        ]
        body.append(figure(title, points, x_label, categories, by))
    body.append("</div>")
    table_columns = _shown_columns(varying, x_key, by)
    body.append(
        _table(runs, params, table_columns, varying, validations, fidelities, link, page_dir)
    )
    data = {
        "runs": [
            {
                "run_id": _clip(run.run_id, 64),
                "x": xv,
                "group": _clip(group),
                "purity": _json_number(validations[run.run_id].get("purity")),
                "entropy": _json_number(validations[run.run_id].get("von_neumann_entropy_bits")),
                "fidelity_to_reference": fidelities[run.run_id],
            }
            for run, xv, group in zip(runs, xs, groups, strict=True)
        ],
        "x": None if x_key is None else _clip(x_key),
        "by": None if by is None else _clip(by),
        "reference": _clip(reference.run_id, 64) if target is None else None,
        "reference_state": None if target is None else _clip(target.name),
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
    from ..store.paths import refuse_archive_output

    roots = {os.fspath(run.archive.root) for run in runs}
    for root in sorted(roots):
        refuse_archive_output(root, output, what="the report")
    if ref is not None and ref_state is not None:
        raise InvalidInput("give a reference run or a target state for the fidelity, not both")
    target = None if ref_state is None else target_state(ref_state)  # read once for all pages

    if one_page:
        pages = {output: list(runs)}
    else:
        by_experiment: dict[str, list[Run]] = {}
        for run in runs:
            by_experiment.setdefault(run.experiment_name, []).append(run)
        names = _file_names(list(by_experiment))
        pages = {output / f"{names[name]}.html": group for name, group in by_experiment.items()}
    for path in pages:
        for root in sorted(roots):
            refuse_archive_output(root, path, what="the report")
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
    shown = ", ".join(_clip(name) for name in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _names(names: Sequence[str], limit: int = NAMES_MAX) -> str:
    """At most ``limit`` names, each clipped, and how many more there are."""
    shown = ", ".join(_clip(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit:,} more" if len(names) > limit else "")


def _dims(run: Run) -> list[int] | None:
    """The run's subsystem dimensions; None when not recorded or its metadata is damaged."""
    try:
        return run.dims
    except ArchiveError:
        return None


def _json_number(value: object) -> float | None:
    """A number the page's data can hold (JSON has no NaN or infinity), else None."""
    return _plot_value(value)


class _Columns:
    """The params of the runs by key, gathered in one pass: which keys vary and how many
    values each has, at a cost linear in the params (not keys times runs)."""

    def __init__(self, params: Sequence[dict[str, Any]]) -> None:
        self.counts: dict[str, int] = {}  # key -> runs that have it
        self.texts: dict[str, set[str]] = {}  # key -> its distinct values, as JSON
        self.plottable: dict[str, bool] = {}  # key -> every value a finite number (or null)
        for p in params:
            for key, value in p.items():
                self.counts[key] = self.counts.get(key, 0) + 1
                self.texts.setdefault(key, set()).add(dumps(value))
                if value is not None and _plot_value(value) is None:
                    self.plottable[key] = False
                else:
                    self.plottable.setdefault(key, True)
        total = len(params)
        for key, count in self.counts.items():
            if count < total:  # a run without the key reads as null, as before
                self.texts[key].add("null")
        self.varying = sorted(key for key, texts in self.texts.items() if len(texts) > 1)

    def values(self, key: str) -> int:
        """How many distinct values ``key`` has (a missing one counts as null)."""
        return len(self.texts.get(key, ()))

    def constant(self, first: dict[str, Any], total: int) -> list[str]:
        """The keys every run has with the same value."""
        return sorted(
            key for key in first if self.counts[key] == total and len(self.texts[key]) == 1
        )


def _default_x(columns: _Columns, by: str | None) -> str | None:
    """The varying numeric parameter with the most distinct values (not the grouping one)."""
    candidates = [
        (columns.values(key), key)
        for key in columns.varying
        if key != by and columns.plottable.get(key, False)
    ]
    return max(candidates)[1] if candidates else None


def _default_by(columns: _Columns, x_key: str | None) -> str | None:
    """The varying param other than the x axis with the fewest values (the first by name of
    those as few), when it has few enough for a colour each: what the points are grouped by
    when ``by`` is not given."""
    candidates = [
        (columns.values(key), key)
        for key in columns.varying
        if key != x_key and columns.values(key) <= DEFAULT_GROUPS_MAX
    ]
    return min(candidates)[1] if candidates else None


def _shown_columns(varying: list[str], x_key: str | None, by: str | None) -> list[str]:
    """The param columns of the table: the x and grouping params first, then the others
    that vary, at most :data:`PARAM_COLUMNS_MAX` in all."""
    first = [key for key in (x_key, by) if key is not None and key in varying]
    rest = [key for key in varying if key not in first]
    return list(dict.fromkeys(first + rest))[:PARAM_COLUMNS_MAX]


def _plot_value(value: object) -> float | None:
    """A param value as a place on an axis: finite numbers only (not booleans)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)  # an integer beyond the floats: OverflowError
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


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
    texts = [None if v is None else dumps(v) for v in values]
    names = sorted({text for text in texts if text is not None})
    index = {name: float(i) for i, name in enumerate(names)}
    return [None if text is None else index[text] for text in texts], names


def _group(params: dict[str, Any], by: str | None) -> str:
    if by is None:
        return ""
    if by not in params:
        return f"{_clip(by)} not set"
    return f"{_clip(by)}={short_value(params[by])}"  # whole: groups differ past the cut


def _header(runs: Sequence[Run], columns: _Columns) -> str:
    experiments = sorted({run.experiment_name for run in runs})
    backends = sorted({run.backend_name for run in runs})
    first = min(runs, key=lambda r: r.timestamp).timestamp
    last = max(runs, key=lambda r: r.timestamp).timestamp
    params = run_params(runs[0]) or {}
    constant = columns.constant(params, len(runs))
    same = " ".join(
        f"{_clip(key)}={_clip(short_value(params[key]))}" for key in constant[:NAMES_MAX]
    )
    if len(constant) > NAMES_MAX:
        same += f" and {len(constant) - NAMES_MAX:,} more"
    rows = [
        ("experiments", _names(experiments)),
        ("backends", _names(backends)),
        ("runs", str(len(runs))),
        ("time span", f"{iso_local(first)} .. {iso_local(last)}"),
        ("params that vary", _names(columns.varying) or "none"),
        ("the same in all", same or "-"),
    ]
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>"


def _table(
    runs: Sequence[Run],
    params: Sequence[dict[str, Any]],
    shown: list[str],
    varying: list[str],
    validations: dict[str, dict[str, Any]],
    fidelities: dict[str, float | None],
    link: Callable[[Run], str | None] | None,
    page_dir: Path | None,
) -> str:
    """The runs (at most :data:`TABLE_MAX`) with the params ``shown``; the link to a run's
    Bloch page only when the trust rule lets it be shown (never a page from a bundle)."""
    order = sorted(range(len(runs)), key=lambda i: (runs[i].timestamp, runs[i].run_id))
    head = ["run", "time", *map(_clip, shown)]
    head += ["purity", "entropy", "physical", "fidelity", "tags", "page"]
    make_link = link or _archive_link(page_dir)
    rows = []
    for index in order[:TABLE_MAX]:
        run = runs[index]
        validation = validations[run.run_id]
        page = _bloch_page(run)
        if page is not None and not may_show(page):
            anchor = "imported: render it"
        else:
            href = make_link(run)
            anchor = f'<a href="{esc(href)}">Bloch</a>' if href else ""
        cells = [
            f'<td class="text">{esc(run.run_id[:8])}</td>',
            f'<td class="text">{esc(iso_local(run.timestamp))}</td>',
            *(f"<td>{esc(_clip(short_value(params[index].get(key))))}</td>" for key in shown),
            f"<td>{number(validation.get('purity'))}</td>",
            f"<td>{number(validation.get('von_neumann_entropy_bits'))}</td>",
            f"<td>{verdict(validation.get('is_valid'))}</td>",
            f"<td>{number(fidelities.get(run.run_id))}</td>",
            f'<td class="text">{esc(_clip(format_tags(run.tags), 2 * TEXT_MAX))}</td>',
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
    if len(varying) > len(shown):
        more += (
            f'<p class="note">{len(varying):,} params vary; the table shows {len(shown)} of '
            "them (the page's data and 'qex-archive export' have them all).</p>"
        )
    return f"<h2>Runs</h2>{more}<table>{header}{''.join(rows)}</table>"


def _bloch_page(run: Run) -> Any:
    return next((a for a in run.artifacts if a.name == "bloch"), None)


def _archive_link(page_dir: Path | None) -> Callable[[Run], str | None]:
    """Links from a page in ``page_dir`` to each run's Bloch page in its archive, for pages
    that exist there as files of the archive's own and that the trust rule lets be shown."""
    from ..store.paths import ForeignFile, stat_data_file

    def link(run: Run) -> str | None:
        artifact = _bloch_page(run)
        if page_dir is None or artifact is None or not may_show(artifact):
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
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:TEXT_MAX] or "experiment"


def _file_names(experiments: Sequence[str]) -> dict[str, str]:
    """A file name (without ``.html``) for each experiment, distinct even where names differ
    only in what a file name cannot hold or in case ("ghz/1", "ghz 1", "ghz_1", "GHZ_1"):
    the readable slug when no other experiment has it, else the slug and a short hash of the
    name (the one whose name is its slug keeps the plain one)."""
    by_slug: dict[str, list[str]] = {}
    for name in experiments:
        by_slug.setdefault(_slug(name).casefold(), []).append(name)
    names: dict[str, str] = {}
    for shared in by_slug.values():
        plain = next((n for n in sorted(shared) if _slug(n) == n), None)
        for name in shared:
            slug = _slug(name)
            if len(shared) == 1 or name == plain:
                names[name] = slug
            else:
                digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
                names[name] = f"{slug}-{digest}"
    taken: set[str] = set()
    for name in sorted(names):  # a name that happens to look like slug-hash: numbered
        candidate, n = names[name], 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{names[name]}-{n}"
        names[name] = candidate
        taken.add(candidate.casefold())
    return names
