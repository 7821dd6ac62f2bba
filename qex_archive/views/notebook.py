"""Rich views in a notebook: ``_repr_html_`` of a run, a selection and an archive.

Plain HTML tables and the Bloch page's inline SVG spheres; no scripts, every text escaped
(a notebook renders what a colleague's bundle put in params or metadata). The spheres paint
themselves (:data:`.bloch.SPHERE_PAINT`, presentation attributes on the SVG elements), so they
are drawn right whether or not the notebook keeps the views' ``<style>``: a viewer that
sanitises outputs (GitHub, an untrusted notebook) may strip it, and the style here lays out
the tables only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._timeutil import iso_local
from ..errors import ArchiveError
from .html import esc
from .values import number, params_text, verdict

if TYPE_CHECKING:
    from ..archive import Archive
    from ..run import Run
    from ..selection import Selection

SELECTION_ROWS = 20
STYLE = (
    "<style>.qex-view table{border-collapse:collapse;font-size:90%}"
    ".qex-view td,.qex-view th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}"
    ".qex-view .qex-spheres{display:flex;flex-wrap:wrap;gap:8px}</style>"
)


def run_html(run: Run) -> str:
    """A compact table of the run and its per-qubit Bloch spheres."""
    from .bloch import MAX_SPHERES, sphere_svg, subsystem_summaries

    validation = run.validation
    physical = verdict(validation.get("is_valid"), "physical", "NOT PHYSICAL")
    rows = [
        ("run", run.run_id),
        ("experiment", run.experiment_name),
        ("backend", run.backend_name),
        ("time", iso_local(run.timestamp)),
        ("params", params_text(run, empty="(none)")),
        ("dims", run.dims),
        (
            "validation",
            f"{physical}; purity {number(validation.get('purity'))}, entropy "
            f"{number(validation.get('von_neumann_entropy_bits'))} bits",
        ),
    ]
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    spheres = ""
    dims = run.dims
    if dims and len(dims) <= MAX_SPHERES:
        try:
            import numpy as np

            labels = run.state_info.get("subsystem_labels") or list(range(len(dims)))
            summaries = subsystem_summaries(np.asarray(run.rho), dims, labels)
            spheres = "".join(sphere_svg(s) for s in summaries if "bloch" in s)
        except ArchiveError as exc:
            spheres = f"<p>{esc(exc)}</p>"
    return (
        f'<div class="qex-view">{STYLE}<table>{table}</table>'
        f'<div class="qex-spheres">{spheres}</div></div>'
    )


def selection_html(selection: Selection) -> str:
    """The first rows of a selection as a table, with the count."""
    head = ["run", "time", "experiment", "backend", "dims", "purity", "valid", "params"]
    body = []
    for run in selection[:SELECTION_ROWS]:
        validation = run.validation
        cells = [
            run.run_id[:8],
            iso_local(run.timestamp),
            run.experiment_name,
            run.backend_name,
            run.dims,
            number(validation.get("purity")),
            verdict(validation.get("is_valid")),
            params_text(run),
        ]
        body.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    more = len(selection) - SELECTION_ROWS
    caption = f"{len(selection)} runs" + (f", first {SELECTION_ROWS} shown" if more > 0 else "")
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        f'<div class="qex-view">{STYLE}<p>{esc(caption)}</p><table><tr>{header}</tr>'
        f"{''.join(body)}</table></div>"
    )


def archive_html(archive: Archive) -> str:
    """Experiments, their run counts and time spans."""
    from ..store.tables import experiment_summary

    rows = experiment_summary(archive.conn)
    body = "".join(
        f"<tr><td>{esc(name)}</td><td>{count}</td><td>{esc(iso_local(first))}</td>"
        f"<td>{esc(iso_local(last))}</td></tr>"
        for name, count, first, last in rows
    )
    total = sum(row[1] for row in rows)
    return (
        f'<div class="qex-view">{STYLE}<p>{esc(f"Archive at {archive.root}: {total} runs")}</p>'
        "<table><tr><th>experiment</th><th>runs</th><th>first</th><th>last</th></tr>"
        f"{body}</table></div>"
    )
