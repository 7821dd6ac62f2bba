"""The HTML of the server's pages, built as every qex page is: fragments whose stored and
foreign texts are escaped with :func:`qex_archive.views.html.esc`, in the one frame
:func:`qex_archive.views.html.page` (its CSP forbids scripts and every fetch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from .._timeutil import iso_local, short_time
from ..errors import ArchiveError
from ..views.bloch import STYLE as BLOCH_STYLE
from ..views.bloch import sphere_svg, subsystem_summaries
from ..views.html import esc, page
from ..views.text import format_dims, run_detail_lines
from ..views.values import (
    format_tags,
    number,
    params_text,
    run_validation,
    verdict,
)

if TYPE_CHECKING:
    from ..run import Run
    from .paging import Page

Query = list[tuple[str, str]]  # query parameters in order, repeatable ones repeated

STYLE = (
    BLOCH_STYLE
    + """
table.runs td{text-align:left;max-width:38em;overflow-wrap:anywhere}
table.runs td.num{text-align:right}
form.filters{display:grid;grid-template-columns:max-content 28em;gap:4px 10px;margin:10px 0}
form.filters input,form.filters select{font:inherit}
.error{background:#fff3f0;border-left:3px solid #d0452f;padding:8px 12px;max-width:760px}
nav a{margin-right:14px}
dd{overflow-wrap:anywhere;white-space:pre-wrap}
"""
)
MAX_SPHERE_DIMENSION = 256  # 8 qubits: larger states show their summary only (for now)


def url(path: str, query: Query) -> str:
    """``path?query`` (the parameters percent-encoded; escape it for an attribute)."""
    return path + ("?" + urlencode(query) if query else "")


def run_url(run_id: str, tail: str = "") -> str:
    return f"/runs/{quote(run_id, safe='')}{tail}"


def _nav(json_href: str) -> str:
    return f'<nav><a href="/">runs</a><a href="{esc(json_href)}">JSON</a></nav>'


def message_page(title: str, line: str) -> bytes:
    """A refusal or failure: its one line, and the way back."""
    return page(
        title,
        [
            f"<h1>{esc(title)}</h1>",
            f'<p class="error">{esc(line)}</p>',
            '<p><a href="/">runs</a></p>',
        ],
        style=STYLE,
    )


# -- the runs page --------------------------------------------------------------------------

FORM_FIELDS = (
    ("e", "experiment", "ghz_depolarizing"),
    ("b", "backend", "aer_simulator"),
    ("since", "since", "2026-11-26T14:00, 3d"),
    ("until", "until", "12h"),
)
REPEATED_FIELDS = (
    ("p", "param", "shots=1024, theta>=0.1"),
    ("w", "where", "purity>=0.9"),
    ("t", "tag", "figure=3"),
)


def _filter_form(query: Query) -> str:
    given: dict[str, list[str]] = {}
    for key, value in query:
        given.setdefault(key, []).append(value)

    def field(key: str, label: str, hint: str, value: str) -> str:
        return (
            f'<label for="f-{key}">{esc(label)}</label><input id="f-{key}" name="{key}" '
            f'value="{esc(value)}" placeholder="{esc(hint)}">'
        )

    out = ['<form class="filters" method="get" action="/">']
    for key, label, hint in FORM_FIELDS:
        out.append(field(key, label, hint, (given.get(key) or [""])[0]))
    for key, label, hint in REPEATED_FIELDS:
        for value in [*given.get(key, []), ""]:
            out.append(field(key, label, hint, value))
    valid = (given.get("valid") or [""])[0]
    options = "".join(
        f'<option value="{value}"{" selected" if value == valid else ""}>{text}</option>'
        for value, text in (("", "any"), ("1", "physical"), ("0", "not physical"))
    )
    out.append(
        f'<label for="f-valid">valid</label><select id="f-valid" name="valid">{options}</select>'
    )
    out.append(
        field("sort", "sort", "time, experiment, purity or a param", (given.get("sort") or [""])[0])
    )
    checked = " checked" if (given.get("reverse") or [""])[0] == "1" else ""
    out.append(
        f'<label for="f-reverse">reverse</label><span><input type="checkbox" id="f-reverse" '
        f'name="reverse" value="1"{checked}></span>'
    )
    limit = (given.get("limit") or [""])[0]
    if limit:
        out.append(f'<input type="hidden" name="limit" value="{esc(limit)}">')
    out.append(
        '<span></span><span><button type="submit">apply</button> <a href="/">clear</a></span>'
    )
    out.append("</form>")
    return "".join(out)


def _run_row(run: Run, tags: dict[str, str]) -> str:
    validation = run_validation(run)
    try:
        dims = format_dims(run.dims)
    except ArchiveError:
        dims = "?"
    cells = [
        f'<a href="{esc(run_url(run.run_id))}">{esc(run.run_id[:8])}</a>',
        f'<span title="{esc(iso_local(run.timestamp))}">{esc(short_time(run.timestamp))}</span>',
        esc(run.experiment_name),
        esc(run.backend_name),
        esc(dims),
    ]
    numbers = [esc(number(validation.get("purity"))), esc(verdict(validation.get("is_valid")))]
    tail = [esc(params_text(run, short=True)), esc(format_tags(tags))]
    return (
        "<tr>"
        + "".join(f"<td>{cell}</td>" for cell in cells)
        + "".join(f'<td class="num">{cell}</td>' for cell in numbers)
        + "".join(f"<td>{cell}</td>" for cell in tail)
        + "</tr>"
    )


def runs_page(
    root: str,
    query: Query,
    found: Page,
    tags: dict[str, dict[str, str]],
    hints: Sequence[str],
    next_href: str | None,
) -> bytes:
    """The runs table of one page, the filter form (filled with ``query``), the hints of a
    selection that matched nothing, and the link to the next page."""
    shown = "no runs match" if not found.runs else f"{len(found.runs):,} runs"
    out = [
        "<h1>Runs</h1>",
        f'<div class="sub">{esc(root)} · read-only</div>',
        _nav(url("/runs.json", query)),
        _filter_form(query),
        f"<p>{esc(shown)}{' (first page)' if found.runs and not found.keyset else ''}</p>",
        *(f'<p class="note">{esc(hint)}</p>' for hint in hints),
    ]
    if found.runs:
        header = (
            "run",
            "time",
            "experiment",
            "backend",
            "dims",
            "purity",
            "valid",
            "params",
            "tags",
        )
        out.append(
            '<table class="runs"><tr>'
            + "".join(f"<th>{name}</th>" for name in header)
            + "</tr>"
            + "".join(_run_row(run, tags.get(run.run_id, {})) for run in found.runs)
            + "</table>"
        )
    if next_href is not None:
        out.append(f'<p><a rel="next" href="{esc(next_href)}">next page</a></p>')
    elif found.runs and not found.keyset:
        out.append(
            '<p class="note">A sort other than time shows its first page only; '
            "narrow the filters, or page in time order.</p>"
        )
    return page("qex runs", out, style=STYLE)


# -- a run's page ---------------------------------------------------------------------------


def detail_lines(run: Run) -> list[tuple[str, str]]:
    """What ``show`` shows, as (label, text), but the lists the page shows on its own."""
    return run_detail_lines(run, listed=False)


def _spheres(run: Run) -> list[str]:
    try:
        state = run.state_info
        dims = list(state.get("dims") or [])
    except ArchiveError:
        return []
    size = 1
    for d in dims:
        size *= int(d)
    if not dims or not any(d == 2 for d in dims):
        return []
    if size > MAX_SPHERE_DIMENSION:
        return [
            f'<p class="note">A {size}-dimensional state: its Bloch spheres are not drawn here '
            "(yet); the Bloch page among the files has them.</p>"
        ]
    try:
        rho = run.rho
    except (ArchiveError, OSError, ValueError) as exc:
        return [f'<p class="error">The density matrix cannot be read: {esc(exc)}</p>']
    labels = list(state.get("subsystem_labels") or range(len(dims)))
    out = ["<h2>Bloch spheres</h2>", '<div class="grid">']
    for q in subsystem_summaries(rho, dims, labels):
        if q["dim"] != 2:
            continue
        x, y, z = q["bloch"]
        out.append(
            f"<figure>{sphere_svg(q)}<figcaption><b>qubit {esc(str(q['label']))}</b><br>"
            f"(x, y, z) = ({x:+.3f}, {y:+.3f}, {z:+.3f})<br>"
            f"|r| = {q['length']:.3f} · purity {q['purity']:.3f}</figcaption></figure>"
        )
    out.append("</div>")
    return out


def run_page(run: Run) -> bytes:
    validation = run_validation(run)
    out = [
        f"<h1>{esc(run.experiment_name)}</h1>",
        f'<div class="sub">run {esc(run.run_id)}</div>',
        _nav(run_url(run.run_id, ".json")),
        "<dl>",
        *(f"<dt>{esc(label)}</dt><dd>{esc(text)}</dd>" for label, text in detail_lines(run)),
        "</dl>",
    ]
    findings = validation.get("findings") or []
    if findings:
        items = "".join(f"<li>{esc(str(f))}</li>" for f in findings)
        out.append(f'<div class="findings"><b>Validation findings:</b><ul>{items}</ul></div>')
    out.extend(_spheres(run))
    out.append("<h2>Files</h2>")
    artifacts = run.artifacts
    if artifacts:
        attached = set(run.attachment_names)
        listed = []
        for artifact in artifacts:
            kind = "attachment" if artifact.name in attached else "artifact"
            origin = ", imported from a bundle" if artifact.foreign else ""
            href = run_url(run.run_id, "/files/" + quote(artifact.name, safe=""))
            listed.append(
                f'<li><a href="{esc(href)}" download>{esc(artifact.name)}</a> '
                f"({esc(kind)}, {esc(artifact.media_type)}{origin}): "
                f"{esc(artifact.relative_path)}</li>"
            )
        out.append("<ul>" + "".join(listed) + "</ul>")
    else:
        out.append("<p>(none)</p>")
    notes = run.notes
    if notes:
        out.append("<h2>Notes</h2><ul>")
        out.extend(
            f"<li>{esc(iso_local(entry['created']))}: "
            f'<span style="white-space:pre-wrap">{esc(entry["text"])}</span></li>'
            for entry in notes
        )
        out.append("</ul>")
    return page(f"{run.experiment_name} · {run.run_id[:8]}", out, style=STYLE)
