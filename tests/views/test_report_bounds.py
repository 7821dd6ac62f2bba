"""A report is bounded whatever the archive holds: time and size linear in the runs, every
plot and table capped, axes finite for any finite values; and a page per experiment gets a
name of its own."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.views.plot import LEGEND_MAX, TEXT_MAX, ticks
from qex_archive.views.report import PARAM_COLUMNS_MAX, report_page, write_reports

from ..cli_tools import invoke


def record_all(archive: qa.Archive, items: list[dict], **kwargs: object) -> list[qa.Run]:
    archive.capture = False
    with archive.batch():
        return [
            archive.record("e", params=p, backend="b", state=np.eye(2) / 2, renderers=[], **kwargs)
            for p in items
        ]


def svgs(html: str) -> list[str]:
    return re.findall(r'<svg class="plot".*?</svg>', html, flags=re.S)


def coordinates(html: str) -> list[float]:
    found = re.findall(r'\s(?:cx|cy|x1|x2|y1|y2|x|y)="([^"]*)"', "".join(svgs(html)))
    return [float(v) for v in found]


@pytest.mark.parametrize(
    "values",
    [
        [1e16, 1e16 + 2],  # a step lost in the floats' precision: the tick loop never ended
        [1.7e308, -1.7e308],  # a span beyond the floats: OverflowError
        [1e300, 1e300],  # equal and huge: +-1 is lost in them (ZeroDivisionError)
        [5e-324, 1e-323],  # subnormal neighbours
        [0.1, 0.1 + 1e-17],
        [10**400, 1],  # an integer beyond the floats is not plotted
    ],
)
def test_any_finite_values_give_a_finite_bounded_plot(
    archive: qa.Archive, values: list[float]
) -> None:
    record_all(archive, [{"p": v, "q": i} for i, v in enumerate(values)])
    html = report_page(archive.runs(), x="p").decode()
    assert len(svgs(html)) == 3
    numbers = coordinates(html)
    assert numbers and all(-1000 < n < 1000 for n in numbers)  # no nan, inf, overflow
    assert html.count('class="tick"') < 3 * 30


def test_runs_moments_apart_and_at_the_same_moment(archive: qa.Archive) -> None:
    archive.capture = False
    for i in range(3):  # 100 ns apart, then two at the same instant
        archive.record(
            "e",
            params={"k": 1},
            backend="b",
            state=np.eye(2) / 2,
            renderers=[],
            timestamp=1.7e9 + i * 1e-7,
        )
    archive.record(
        "e", params={"k": 1}, backend="b", state=np.eye(2) / 2, renderers=[], timestamp=1.7e9
    )
    html = report_page(archive.runs()).decode()
    assert all(-1000 < n < 1000 for n in coordinates(html))


def test_ticks_are_counted_not_stepped() -> None:
    assert ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    for low, high in ((1e16, 1e16 + 2), (-1.7e308, 1.7e308), (0.0, 5e-324), (1e300, 1e300)):
        marks = ticks(low, high)
        assert len(marks) <= 12 and marks == sorted(set(marks))


def test_many_params_that_vary_give_a_bounded_table(archive: qa.Archive) -> None:
    # every run with 40 keys of its own: 8,000 params vary (21 MB in 12 s before)
    record_all(archive, [{f"k{i}_{j}": i * 1000 + j for j in range(40)} for i in range(200)])
    html = report_page(archive.runs()).decode()
    header = re.search(r"<tr><th>.*?</tr>", html)
    assert header is not None and header.group().count("<th>") == 2 + PARAM_COLUMNS_MAX + 6
    assert "8,000 params vary; the table shows 16" in html
    assert "and 7,960 more" in html
    assert len(html) < 400_000


def test_long_texts_and_many_groups_are_cut(archive: qa.Archive) -> None:
    long = "x" * 10_000
    record_all(archive, [{"p": i, "g": f"{long}{i}"} for i in range(40)])
    html = report_page(archive.runs(), x="p", by="g").decode()
    assert long[: TEXT_MAX * 2] not in html
    assert html.count('class="legend"') <= 3 * (LEGEND_MAX + 1)
    assert "more groups" in html
    assert len(html) < 200_000


def test_damaged_metadata_does_not_stop_a_report(archive: qa.Archive) -> None:
    runs = record_all(archive, [{"p": 1}, {"p": 2}])
    archive.conn.execute(
        "UPDATE runs SET metadata = 'not json' WHERE run_id = ?", (runs[0].run_id,)
    )
    archive.conn.commit()
    html = report_page(archive.runs()).decode()
    assert html.count("<tr>") == 3


def test_experiments_whose_names_give_the_same_file_each_get_a_page(
    archive: qa.Archive, tmp_path: Path
) -> None:
    names = ["ghz/1", "ghz 1", "ghz_1", "GHZ_1", "ghz_1-"]
    archive.capture = False
    for name in names:
        archive.record(name, params={"p": 1}, backend="b", state=np.eye(2) / 2, renderers=[])
    written = write_reports(archive.runs(), tmp_path / "pages", one_page=False)
    assert len(written) == len(names)
    assert len({p.name.casefold() for p in written}) == len(names)
    titles = {re.search(r"<title>(.*?)</title>", p.read_text()).group(1) for p in written}  # type: ignore[union-attr]
    assert titles == {"ghz/1", "ghz 1", "ghz_1", "GHZ_1", "ghz_1-"}
    # a name that is its own file name keeps it (the first of those alike but for case)
    assert (tmp_path / "pages" / "GHZ_1.html").is_file()
    assert (tmp_path / "pages" / "ghz_1-.html").is_file()


CHILD = textwrap.dedent(
    """
    import resource, sys, time
    import numpy as np
    import qex_archive as qa
    from qex_archive.views.report import write_reports
    root, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (30, 30))
    start = time.process_time()
    with qa.open_archive(root) as arch:
        written = write_reports(arch.runs(), __import__("pathlib").Path(out), one_page=True)
    print(time.process_time() - start, written[0].stat().st_size)
    """
)


def test_report_of_hostile_and_large_archives_in_bounded_memory_and_time(
    tmp_path: Path,
) -> None:
    """The report of each archive in a child under RLIMIT_AS (512 MB) and a CPU-time bound."""
    cases = {
        "wide": [{f"k{i}_{j}": i * 1000 + j for j in range(40)} for i in range(200)],
        "close": [{"p": 1e16}, {"p": 1e16 + 2}],
        "huge": [{"p": 1.7e308}, {"p": -1.7e308}],
        "many": [{"p": i % 97, "g": i % 13, "s": f"v{i}"} for i in range(3000)],
    }
    for name, items in cases.items():
        root = tmp_path / name
        with qa.open_archive(root) as arch:
            record_all(arch, items)
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(root),
                str(tmp_path / f"{name}.html"),
                str(512 * 1024**2),
            ],
            env={**os.environ, "PYTHONPATH": str(Path(qa.__file__).parents[1])},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (name, done.stderr[-2000:])
        seconds, size = done.stdout.split()
        assert float(seconds) < 10, name
        assert int(size) < 2_000_000, name
    assert resource.getrlimit(resource.RLIMIT_AS)  # the parent is untouched


def test_the_command_writes_a_bounded_report(archive: qa.Archive, tmp_path: Path) -> None:
    record_all(archive, [{"p": 1e16}, {"p": 1e16 + 2}])
    result = invoke(archive.root, "report", "-o", str(tmp_path / "r.html"), "--x", "p")
    assert result.exit_code == 0, result.output
    data = re.search(
        r'<script type="application/json" id="qex-data">(.*?)</script>',
        (tmp_path / "r.html").read_text(),
    )
    assert data is not None and len(json.loads(data.group(1))["runs"]) == 2
