"""Experiment reports: what a page holds, that nothing in it can run or fetch, and its size."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli
from qex_archive.demo import fill_demo_archive
from qex_archive.views.report import report_page, write_reports

from ..conftest import bell_state


def points(html: str) -> list[int]:
    """Points per plot, in order."""
    return [svg.count('class="pt"') for svg in re.findall(r'<svg class="plot".*?</svg>', html)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "qex_data"
    with qa.open_archive(root) as arch:
        fill_demo_archive(arch)
    return root


def test_a_report_has_the_header_plots_and_table(demo: Path) -> None:
    with qa.open_archive(demo) as arch:
        runs = arch.runs(experiment="rabi_sweep")
        html = report_page(runs, page_dir=demo / "reports").decode()
    assert "<dt>params that vary</dt><dd>theta_rad</dd>" in html
    assert "damping=0.02 dephasing=0.05" in html
    assert points(html) == [21, 21, 21]
    assert html.count("<tr>") == 22 and html.count(">Bloch</a>") == 21
    for href in re.findall(r'href="([^"]+)"', html):
        assert (demo / "reports" / href).resolve().is_file()
    assert "default-src 'none'" in html
    assert re.findall(r"<script(?![^>]*application/json)", html) == []


def test_grouping_categories_and_nothing_varying(archive: qa.Archive) -> None:
    for i in range(6):
        archive.record(
            "e",
            params={"mode": ["a", "b", "c"][i % 3], "level": i % 2},
            backend="b",
            state=np.eye(2) / 2 if i % 2 else bell_state(),
        )
    runs = archive.runs()
    grouped = report_page(runs, x="mode", by="level").decode()
    assert "level=0" in grouped and "level=1" in grouped  # the legend
    assert ">&quot;a&quot;</text>" in grouped or '>"a"</text>' in grouped  # category ticks
    same = [archive.record("f", params={"k": 1}, backend="b", state=bell_state()) for _ in range(2)]
    flat = report_page(same).decode()
    assert "run (in time order)" in flat and "params that vary</dt><dd>none" in flat
    with pytest.raises(qa.InvalidInput, match="no run has the param 'nope'"):
        report_page(runs, x="nope")
    with pytest.raises(qa.InvalidInput, match="no runs"):
        report_page([])


def test_text_from_runs_is_escaped(archive: qa.Archive) -> None:
    evil = "<img src=x onerror=alert(1)>"
    run = archive.record("x", params={"p": evil, "q": 1}, backend=evil, state=bell_state())
    run.set_tag("t", evil)
    archive.record("x", params={"p": 2, "q": 2}, backend="b", state=bell_state())
    html = report_page(archive.runs()).decode()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_command_writes_a_page_per_experiment_or_one(demo: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--data-dir", str(demo), "report"])
    assert result.exit_code == 0, result.output
    pages = sorted(p.name for p in (demo / "reports").iterdir())
    assert pages == ["ghz_depolarizing.html", "rabi_sweep.html", "tomography_1q.html"]
    one = tmp_path / "ghz.html"
    result = runner.invoke(
        cli, ["--data-dir", str(demo), "report", "-e", "ghz_depolarizing", "--by", "n_qubits",
              "-o", str(one)],
    )  # fmt: skip
    assert result.exit_code == 0 and one.is_file()
    assert points(one.read_text()) == [15, 15, 5]


def test_ten_thousand_runs_stay_under_five_megabytes(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "big", renderers=[]) as arch:
        with arch.batch():
            for i in range(10_000):
                p = (i % 100) / 100
                state = (1 - p) * np.diag([1.0, 0, 0, 0]) + p * np.eye(4) / 4
                arch.record("sweep", params={"p": p, "seed": i % 7}, backend="b", state=state)
        (path,) = write_reports(arch.runs(), tmp_path / "r.html", one_page=True)
    html = path.read_text()
    assert path.stat().st_size < 5 * 1024**2
    assert points(html) == [10_000, 10_000, 10_000]
    assert "first 1,000 of 10,000 runs" in html and html.count("<tr>") == 1001
