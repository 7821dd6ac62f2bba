"""Selections for analysis: pandas, xarray and one stacked array; export; notebook views."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli

from .conftest import bell_state

pd = pytest.importorskip("pandas")


@pytest.fixture
def sweep(archive: qa.Archive) -> qa.Archive:
    with archive.batch():
        for i, p in enumerate((0.0, 0.1, 0.3)):
            archive.record(
                "bell",
                params={"p": p, "shots": 1024, "setup": {"fridge": i, "line": "a"}},
                backend="sim",
                state=(1 - p) * bell_state() + p * np.eye(4) / 4,
                timestamp=1_800_000_000 + i,
            )
        archive.record("single", params={"x": "text"}, backend="sim", state=np.eye(2) / 2)
    return archive


def test_to_pandas_has_a_row_per_run_and_the_documented_columns(sweep: qa.Archive) -> None:
    selection = sweep.runs(experiment="bell")
    frame = selection.to_pandas()
    assert list(frame.columns) == [
        "run_id", "experiment", "backend", "time", "params.p", "params.setup.fridge",
        "params.setup.line", "params.shots", "purity", "entropy", "is_valid", "trace", "dims",
    ]  # fmt: skip
    assert list(frame["run_id"]) == [run.run_id for run in selection]
    assert list(frame["params.p"]) == [0.3, 0.1, 0.0]
    assert frame["time"].iloc[0].tzinfo is not None
    assert frame["time"].iloc[0].timestamp() == pytest.approx(1_800_000_002)
    expected = [run.validation["purity"] for run in selection]
    assert list(frame["purity"]) == pytest.approx(expected)
    assert list(frame["is_valid"]) == [True, True, True] and frame["dims"].iloc[0] == [2, 2]


def test_rhos_stacks_the_matrices_and_refuses_mixed_dimensions(sweep: qa.Archive) -> None:
    selection = sweep.runs(experiment="bell")
    stacked = selection.rhos()
    assert stacked.shape == (3, 4, 4) and stacked.flags.c_contiguous
    for run, rho in zip(selection, stacked, strict=True):
        np.testing.assert_array_equal(rho, run.rho)
    with pytest.raises(qa.InvalidInput, match="different dimensions"):
        sweep.runs().rhos()


def test_to_xarray_carries_runs_and_params_as_coordinates(sweep: qa.Archive) -> None:
    pytest.importorskip("xarray")
    array = sweep.runs(experiment="bell", sort="params.p").to_xarray()
    assert array.dims == ("run", "row", "col") and array.shape == (3, 4, 4)
    assert list(array.coords["params.p"].values) == [0.0, 0.1, 0.3]
    assert array.sel(run=array.coords["run"].values[2]).values[0, 0] == pytest.approx(
        (1 - 0.3) / 2 + 0.3 / 4
    )
    assert json.loads(array.attrs["subsystem_dims"]) == [2, 2]


def test_a_missing_extra_is_a_one_line_error(
    sweep: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_pandas(name: str, *args: object, **kwargs: object) -> object:
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    monkeypatch.delitem(__import__("sys").modules, "pandas")
    with pytest.raises(qa.QexError, match=r"pip install 'qex-archive\[analysis\]'"):
        sweep.runs().to_pandas()


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_export_writes_the_same_table_as_to_pandas(
    sweep: qa.Archive, tmp_path: Path, suffix: str
) -> None:
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    target = tmp_path / f"runs.{suffix}"
    result = CliRunner().invoke(
        cli, ["--data-dir", str(sweep.root), "export", "-e", "bell", "-o", str(target)]
    )
    assert result.exit_code == 0 and "exported 3 runs" in result.output, result.output
    expected = sweep.runs(experiment="bell").to_pandas()
    if suffix == "csv":
        written = pd.read_csv(target)
    elif suffix == "jsonl":
        written = pd.read_json(target, lines=True)
    else:
        written = pd.read_parquet(target)
    assert list(written.columns) == list(expected.columns)
    assert list(written["run_id"]) == list(expected["run_id"])
    assert list(written["params.p"]) == pytest.approx(list(expected["params.p"]))
    assert list(written["purity"]) == pytest.approx(list(expected["purity"]))
    times = pd.to_datetime(written["time"], utc=True)
    assert [t.timestamp() for t in times] == [t.timestamp() for t in expected["time"]]


def test_export_streams_and_refuses_bad_targets(sweep: qa.Archive, tmp_path: Path) -> None:
    from qex_archive.export import export_runs

    with sweep.batch():
        for i in range(2500):  # more than one chunk of rows
            sweep.record("many", params={"i": i}, backend="b", state=np.eye(2) / 2)
    report = export_runs(sweep, qa.RunFilter(experiment="many"), tmp_path / "m.jsonl")
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert report.runs == 2500 == len(lines)
    assert sorted(json.loads(line)["params.i"] for line in lines) == list(range(2500))
    with pytest.raises(qa.InvalidInput, match="not one of csv, jsonl, parquet"):
        export_runs(sweep, qa.RunFilter(), tmp_path / "m.xlsx")
    with pytest.raises(qa.InvalidInput, match="existing directory"):
        export_runs(sweep, qa.RunFilter(), tmp_path / "missing" / "m.csv")


def test_notebook_views_are_escaped_and_script_free(archive: qa.Archive) -> None:
    hostile = "<script>alert(1)</script>"
    run = archive.record(
        "x<b>", params={hostile: hostile}, backend="b", state=bell_state(), metadata={"n": 1}
    )
    for view in (run._repr_html_(), archive.runs()._repr_html_(), archive._repr_html_()):
        assert ("<script" not in view.lower() and "&lt;script&gt;" in view) or "x&lt;b&gt;" in view
    assert run._repr_html_().count("<svg") == 2  # one sphere per qubit
    assert "1 runs" in archive.runs()._repr_html_()
    assert repr(archive.runs()) == "<Selection of 1 runs>"
