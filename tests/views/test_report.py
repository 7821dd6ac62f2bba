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


def page_data(html: str) -> dict:  # type: ignore[type-arg]
    import json

    (payload,) = re.findall(r'<script type="application/json" id="qex-data">(.*?)</script>', html)
    return json.loads(payload)  # type: ignore[no-any-return]


def colours(svg: str) -> set[str]:
    return set(re.findall(r'<circle class="pt"[^>]* fill="([^"]+)"', svg))


def sweep(archive: qa.Archive) -> list[qa.Run]:
    """theta over six values (up to 5 pi / 12), for each of two qubit counts: two params vary."""
    runs = []
    for n in (1, 2):
        for k in range(6):
            theta = k * np.pi / 12
            psi = np.array([np.cos(theta / 2), np.sin(theta / 2)])
            state = psi if n == 1 else np.kron(psi, psi)
            runs.append(
                archive.record(
                    "sweep", params={"theta": theta, "n": n, "shots": 100}, backend="b", state=state
                )
            )
    return runs


def test_with_two_params_varying_the_points_are_grouped_by_the_second(
    archive: qa.Archive,
) -> None:
    runs = sweep(archive)
    html = report_page(runs).decode()
    data = page_data(html)
    assert (data["x"], data["by"]) == ("theta", "n")
    purity_plot = re.findall(r'<svg class="plot".*?</svg>', html)[0]
    assert len(colours(purity_plot)) == 2  # one colour per group
    assert re.findall(r'<text class="legend"[^>]*>([^<]*)</text>', purity_plot) == ["n=1", "n=2"]
    # --by overrides, and x is then the other one
    overridden = page_data(report_page(runs, by="theta").decode())
    assert (overridden["x"], overridden["by"]) == ("n", "theta")
    # one param varying: nothing to group by
    alone = page_data(report_page([r for r in runs if r.params["n"] == 1]).decode())
    assert (alone["x"], alone["by"]) == ("theta", None)


def test_the_command_groups_by_the_second_varying_param_by_default(demo: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(demo), "report", "-e", "ghz_depolarizing", "-o", "ghz.html"]
    )
    assert result.exit_code == 0, result.output
    html = Path("ghz.html").read_text()
    assert page_data(html)["by"] == "n_qubits"
    purity_plot = re.findall(r'<svg class="plot".*?</svg>', html)[0]
    assert len(colours(purity_plot)) == 3 and 'class="legend"' in purity_plot


def test_the_table_shows_six_significant_digits_and_no_negative_zero(
    archive: qa.Archive,
) -> None:
    from .test_views import damage

    runs = sweep(archive)
    pure = runs[0]
    damage(
        archive,
        pure,
        "UPDATE runs SET metadata = "
        "json_set(metadata, '$.validation.von_neumann_entropy_bits', -1e-17)",
    )
    archive.record("sweep", params={"theta": -0.0, "n": 3, "shots": 100}, backend="b",
                   state=np.eye(8) / 8)  # fmt: skip
    html = report_page(archive.runs()).decode()
    assert 5 * np.pi / 12 in [r["x"] for r in page_data(html)["runs"]]  # the data: every digit
    shown = html[: html.index('<script type="application/json"')]  # what a reader sees
    table = shown[shown.index("<h2>Runs</h2>") :]
    assert "1.3089969389957472" not in shown and "<td>1.309</td>" in table
    assert "<td>0.261799</td>" in table  # pi/12, as 'qex-archive runs' shows it
    assert "-0.0000" not in shown and "<td>-0</td>" not in table
    row = next(r for r in table.split("<tr>") if pure.run_id[:8] in r)
    assert "<td>0.0000</td>" in row


def test_fidelity_to_a_target_state(archive: qa.Archive, tmp_path: Path) -> None:
    runs = sweep(archive)
    plus = np.array([1, 1]) / np.sqrt(2)
    expected = {
        run.run_id: abs(np.array([np.cos(t / 2), np.sin(t / 2)]) @ plus) ** 2
        for run in runs
        if run.params["n"] == 1
        for t in [run.params["theta"]]
    }

    def fidelities(html: str) -> dict[str, float | None]:
        return {r["run_id"]: r["fidelity_to_reference"] for r in page_data(html)["runs"]}

    by_array = report_page(runs, ref_state=plus).decode()
    got = fidelities(by_array)
    assert {k: v for k, v in got.items() if v is not None} == pytest.approx(expected)
    assert [v for v in got.values() if v is None] == [None] * 6  # the 2-qubit runs
    assert "fidelity to the target state (runs of its dimension)" in by_array
    assert page_data(by_array)["reference"] is None
    # a density matrix in a .npy file, by path (str or Path): the same numbers, named by file
    target = tmp_path / "target.npy"
    np.save(target, np.outer(plus, plus))
    for given in (target, str(target)):
        html = report_page(runs, ref_state=given).decode()
        assert fidelities(html) == pytest.approx(got)
        assert "fidelity to target.npy" in html
        assert page_data(html)["reference_state"] == "target.npy"
    (path,) = write_reports(runs, tmp_path / "r.html", one_page=True, ref_state=target)
    assert fidelities(path.read_text()) == pytest.approx(got)
    # a two-qubit target: the other runs
    two = fidelities(report_page(runs, ref_state=np.kron(plus, plus)).decode())
    assert [k for k, v in two.items() if v is not None] == [
        r.run_id for r in runs if r.params["n"] == 2
    ]


def test_a_target_state_is_read_safely_and_alone(archive: qa.Archive, tmp_path: Path) -> None:
    runs = sweep(archive)
    pickled = tmp_path / "evil.npy"
    np.save(pickled, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(qa.InvalidInput, match="pickle"):
        report_page(runs, ref_state=pickled)
    with pytest.raises(qa.InvalidInput, match="cannot read"):
        report_page(runs, ref_state=tmp_path / "missing.npy")
    with pytest.raises(qa.InvalidInput, match="not both"):
        report_page(runs, ref=runs[0], ref_state=np.eye(2) / 2)
    with pytest.raises(qa.InvalidInput, match="not both"):
        write_reports(runs, tmp_path / "r.html", one_page=True, ref=runs[0], ref_state=[1, 0])
    with pytest.raises(qa.InvalidInput, match="shape"):
        report_page(runs, ref_state=np.ones((2, 3)))
