"""The views say the same thing the same way: one number format, one verdict, one mark for
damaged params, one escaping function, on every page and in every text view; and nothing
under ``qex_archive/views`` reaches up into the archive facade, the bundle, the remotes or
the CLI at runtime."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.views.html import esc
from qex_archive.views.values import (
    DAMAGED,
    format_params,
    number,
    params_text,
    run_params,
    short_value,
    verdict,
)

from ..conftest import bell_state

VIEWS = Path(qa.__file__).parent / "views"
# What a view may not import at runtime: the layers above it, and the facade's modules.
ABOVE_VIEWS = (
    "qex_archive.run",
    "qex_archive.archive",
    "qex_archive.selection",
    "qex_archive.plugins",
    "qex_archive._plugin_calls",
    "qex_archive.bundle",
    "qex_archive.remote",
    "qex_archive.cli",
)


def damage(archive: qa.Archive, run: qa.Run, sql: str) -> qa.Run:
    """``run`` as it reads after another tool wrote its row badly."""
    archive.conn.execute(sql + " WHERE run_id = ?", (run.run_id,))
    archive.conn.commit()
    return archive.get(run.run_id)


def test_number_and_verdict_read_the_same_everywhere() -> None:
    assert [number(0.5), number(1), number(None), number("0.5"), number(2.0, ".6g")] == [
        "0.5000",
        "1.0000",
        "?",
        "?",
        "2",
    ]
    assert [verdict(True), verdict(False), verdict(None)] == ["yes", "NO", "?"]
    assert verdict(None, "physical", "NOT PHYSICAL") == "?"


def test_numbers_are_never_a_negative_zero() -> None:
    """Rounding noise below zero (an entropy of -1e-17) reads as zero, in every format; a
    number that shows a digit keeps its sign, and so do the infinities."""
    assert [number(-1e-17), number(-0.0), number(-0.0, ".6g"), number(-1e-17, ".0e")] == [
        "0.0000",
        "0.0000",
        "0",
        "-1e-17",
    ]
    assert number(-0.0, ".0e") == "0e+00" and number(-0.00012) == "-0.0001"
    assert [number(float("-inf")), number(-1e-17, ".6g"), number(-3)] == [
        "-inf",
        "-1e-17",
        "-3.0000",
    ]


def test_params_in_tables_have_six_significant_digits() -> None:
    """The one short form of a param value: 'qex-archive runs' and the report table."""
    assert short_value(1.3089969389957472) == "1.309"
    assert short_value(0.2617993877991494) == "0.261799"
    assert [short_value(-0.0), short_value([-0.0, 2.5e-7, 3]), short_value("a")] == [
        "0",
        "[0,2.5e-07,3]",
        '"a"',
    ]
    assert format_params({"theta": 1.3089969389957472, "n": 2}, short=True) == "theta=1.309 n=2"
    assert format_params({"theta": 1.3089969389957472}) == "theta=1.3089969389957472"


def test_one_escaping_function_quotes_attributes_too() -> None:
    assert esc("<a href=\"x\" title='y'>&</a>") == (
        "&lt;a href=&quot;x&quot; title=&#x27;y&#x27;&gt;&amp;&lt;/a&gt;"
    )


def test_damaged_params_read_as_one_mark_in_every_view(archive: qa.Archive) -> None:
    from qex_archive.compare import compare_runs, comparison_text
    from qex_archive.views.bloch import bloch_page
    from qex_archive.views.notebook import run_html, selection_html
    from qex_archive.views.text import run_details, runs_table

    healthy = archive.record("e", params={"x": 1}, backend="b", state=bell_state())
    run = archive.record("e", params={"x": 2}, backend="b", state=bell_state())
    run = damage(archive, run, "UPDATE runs SET params = '[1, 2]'")
    assert run_params(run) is None and params_text(run) == DAMAGED
    shown = esc(DAMAGED)
    # the Bloch page and the notebook once wrote shorter marks of their own
    assert f"<dt>params</dt><dd>{shown}</dd>" in bloch_page(run, np.asarray(run.rho)).decode()
    assert f"<th>params</th><td>{shown}</td>" in run_html(run)
    assert f"<td>{shown}</td>" in selection_html(archive.runs())
    assert DAMAGED in runs_table([run]) and DAMAGED in run_details(run)
    comparison = compare_runs([healthy, run])
    assert comparison.to_dict()["runs"][1]["params"] is None
    assert comparison.differing_params == ["x"] and "—" in comparison_text(comparison)


def test_a_run_without_params_says_none_in_its_details(archive: qa.Archive) -> None:
    """The notebook's run view once showed an empty cell where the Bloch page and ``show``
    say ``(none)``; tables keep the cell empty."""
    from qex_archive.views.bloch import bloch_page
    from qex_archive.views.notebook import run_html, selection_html
    from qex_archive.views.text import run_details, runs_table

    run = archive.record("e", params={}, backend="b", state=bell_state())
    assert "<dt>params</dt><dd>(none)</dd>" in bloch_page(run, np.asarray(run.rho)).decode()
    assert "<th>params</th><td>(none)</td>" in run_html(run)
    assert ["params", "(none)"] in [line.split() for line in run_details(run).splitlines()]
    assert "(none)" not in selection_html(archive.runs())
    assert "(none)" not in runs_table([run])


def test_a_run_without_a_verdict_is_unknown_not_unphysical(archive: qa.Archive) -> None:
    """A validation summary without ``is_valid`` (written by another tool) reads ``?`` in
    every view: ``show`` once called such a run NOT PHYSICAL while ``runs`` said ``?``."""
    from qex_archive.compare import compare_runs, comparison_text
    from qex_archive.views.notebook import run_html
    from qex_archive.views.report import report_page
    from qex_archive.views.text import run_details, runs_table

    other = archive.record("e", params={"x": 1}, backend="b", state=bell_state())
    run = archive.record("e", params={"x": 2}, backend="b", state=bell_state())
    run = damage(
        archive, run, "UPDATE runs SET metadata = json_remove(metadata, '$.validation.is_valid')"
    )
    assert "is_valid" not in run.validation and run.validation["purity"] == pytest.approx(1)
    details = run_details(run)
    assert "  ?: trace 1, purity 1.0000" in details and "PHYSICAL" not in details
    assert "1.0000  ?" in runs_table([run])
    assert "<td>?; purity 1.0000" in run_html(run)
    assert "<td>?</td>" in report_page([run, other]).decode()
    physical = next(
        line
        for line in comparison_text(compare_runs([other, run])).splitlines()
        if line.startswith("physical")
    )
    assert physical.split() == ["physical", "yes", "?"]


def test_every_view_escapes_what_a_run_holds(archive: qa.Archive) -> None:
    from qex_archive.views.bloch import bloch_page
    from qex_archive.views.notebook import archive_html, run_html, selection_html
    from qex_archive.views.report import report_page

    hostile = "<img src=x onerror=alert(1)>"
    run = archive.record(hostile, params={"p": hostile}, backend=hostile, state=bell_state())
    pages = [
        bloch_page(run, np.asarray(run.rho)).decode(),
        report_page([run]).decode().split('<script type="application/json"')[0],
        run_html(run),
        selection_html(archive.runs()),
        archive_html(archive),
    ]
    for page in pages:
        assert "<img" not in page and esc(hostile) in page
    data = report_page([run]).decode().split('id="qex-data">')[1].split("</script>")[0]
    assert "<" not in data and json.loads(data)["runs"][0]["run_id"] == run.run_id


def _runtime_imports(path: Path) -> list[tuple[str, int]]:
    """The qex_archive modules ``path`` imports outside ``if TYPE_CHECKING:`` blocks."""
    package = "qex_archive.views"
    found = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                    names = [] if child.module else [a.name for a in child.names]
                    found.extend((f"{module}.{name}", child.lineno) for name in names)
                    if child.module:
                        found.append((module, child.lineno))
                elif child.module:
                    found.append((child.module, child.lineno))
            elif isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno) for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_views_import_nothing_above_them_at_runtime() -> None:
    offending = [
        f"views/{path.name}:{line} imports {module}"
        for path in sorted(VIEWS.glob("*.py"))
        for module, line in _runtime_imports(path)
        if any(module == above or module.startswith(above + ".") for above in ABOVE_VIEWS)
    ]
    assert offending == []
