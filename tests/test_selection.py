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
        "notes",
    ]  # fmt: skip
    assert list(frame["run_id"]) == [run.run_id for run in selection]
    assert list(frame["params.p"]) == [0.3, 0.1, 0.0]
    assert frame["time"].iloc[0].tzinfo is not None
    assert frame["time"].iloc[0].timestamp() == pytest.approx(1_800_000_002)
    expected = [run.validation["purity"] for run in selection]
    assert list(frame["purity"]) == pytest.approx(expected)
    assert list(frame["is_valid"]) == [True, True, True] and frame["dims"].iloc[0] == [2, 2]


@pytest.fixture
def annotated(sweep: qa.Archive) -> qa.Archive:
    """The sweep's bell runs (p = 0, 0.1, 0.3) tagged, noted and fitted."""
    first, second, third = sweep.runs(experiment="bell", sort="params.p")
    first.set_tag("figure", "2")
    first.set_tag("keep")
    third.set_tag("figure", "2")
    second.set_tag("figure", "3")
    first.add_note("drift in the fridge")
    first.add_note("second look: fine")
    third.add_note("outlier")
    return sweep


def refit(archive: qa.Archive) -> qa.Archive:
    """The bell runs again, with their user metadata (recorded afresh: run data is read-only)."""
    for i, run in enumerate(archive.runs(experiment="bell", sort="params.p")):
        fit = {"chi2": 1.5 + i, "params": [i, 2 * i], "model": "werner"}
        if i == 1:
            fit = {"model": "werner"}  # no chi2 for this one
        archive.record(
            "fitted",
            params=run.params,
            backend="sim",
            state=run.rho,
            metadata={"fit": fit, "a.b": {"c": i}},
            timestamp=1_800_000_000 + i,
        )
    return archive


def test_to_pandas_has_tags_notes_and_asked_for_metadata(annotated: qa.Archive) -> None:
    selection = annotated.runs(experiment="bell", sort="params.p")
    frame = selection.to_pandas()
    assert list(frame.columns)[-3:] == ["tags.figure", "tags.keep", "notes"]
    assert list(frame["tags.figure"]) == ["2", "3", "2"]
    assert [v if isinstance(v, str) else None for v in frame["tags.keep"]] == ["", None, None]
    assert list(frame["notes"]) == [2, 0, 1] and frame["notes"].dtype == "int64"
    figure_2 = frame[frame["tags.figure"] == "2"]  # "plot only the figure=2 runs"
    assert list(figure_2["params.p"]) == [0.0, 0.3]

    with_text = selection.to_pandas(with_notes=True)
    assert list(with_text.columns)[-2:] == ["notes", "notes.text"]
    assert with_text["notes.text"].iloc[0] == "drift in the fridge\n\nsecond look: fine"
    assert with_text["notes.text"].iloc[1] is None
    assert with_text["notes.text"].iloc[2] == "outlier"

    # a tag no run of the selection carries has no column, unless asked for
    assert "tags.figure" not in annotated.runs(experiment="single").to_pandas().columns
    forced = annotated.runs(experiment="single").to_pandas(columns=["tags.figure"])
    assert list(forced["tags.figure"]) == [None]

    fitted = refit(annotated).runs(experiment="fitted", sort="params.p")
    columns = ["metadata.fit.chi2", "metadata.fit.params.1", "metadata.fit", "metadata.a.b.c"]
    frame = fitted.to_pandas(columns=columns)
    assert list(frame.columns)[-5:] == ["notes", *columns]
    chi2 = frame["metadata.fit.chi2"]
    assert chi2.dtype == "float64" and chi2[0] == 1.5 and pd.isna(chi2[1]) and chi2[2] == 3.5
    assert list(frame["metadata.fit.params.1"].fillna(-1)) == [0, -1, 4]  # list indices
    assert frame["metadata.fit"].iloc[1] == {"model": "werner"}
    assert list(frame["metadata.a.b.c"]) == [0, 1, 2]  # a key with a dot in it
    assert list(fitted.to_pandas(columns=["metadata.nothing.here"])["metadata.nothing.here"]) == [
        None,
        None,
        None,
    ]
    records = fitted.records(columns=["metadata.fit.chi2"], with_notes=True)
    assert records[0]["metadata.fit.chi2"] == 1.5 and records[0]["notes.text"] is None
    for bad in (["params.p"], ["metadata."], ["metadata.fit..chi2"], ["tags."], ["chi2"]):
        with pytest.raises(qa.InvalidInput, match=r"metadata\.<dotted path>"):
            fitted.to_pandas(columns=bad)


def test_annotations_are_read_in_a_few_queries(annotated: qa.Archive) -> None:
    selection = annotated.runs()
    statements: list[str] = []
    annotated.conn.set_trace_callback(statements.append)
    try:
        selection.to_pandas(columns=["metadata.validation.purity"], with_notes=True)
    finally:
        annotated.conn.set_trace_callback(None)
    assert len(statements) <= 5, statements  # summary, tags, notes, metadata


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


def test_to_xarray_time_is_utc_aware_as_in_pandas_and_the_basis_is_labelled(
    annotated: qa.Archive,
) -> None:
    pytest.importorskip("xarray")
    from qex_archive.selection import Selection, basis_labels

    selection = annotated.runs(experiment="bell", sort="params.p")
    array = selection.to_xarray()
    times = list(array.coords["time"].values)
    assert all(t.tzinfo is not None and t.utcoffset().total_seconds() == 0 for t in times)
    assert times == list(selection.to_pandas()["time"])
    assert [t.timestamp() for t in times] == [1_800_000_000, 1_800_000_001, 1_800_000_002]
    assert array.coords["time"].attrs["timezone"] == "UTC"
    assert list(array.coords["row"].values) == ["00", "01", "10", "11"]
    assert list(array.coords["col"].values) == ["00", "01", "10", "11"]
    run = selection[2]
    assert array.sel(run=run.run_id, row="00", col="11").item() == run.rho[0, 3]
    assert list(array.coords["tags.figure"].values) == ["2", "3", "2"]
    assert list(array.coords["notes"].values) == [2, 0, 1]

    with annotated.batch():
        qutrit_qubit = annotated.record(
            "qudit", backend="sim", state=np.eye(6) / 6, dims=[3, 2], params={"v": [1, 2]}
        )
        annotated.record("qudit", backend="sim", state=np.eye(6) / 6, dims=[2, 3])
    only = Selection(annotated, [qutrit_qubit]).to_xarray()
    assert list(only.coords["row"].values) == ["00", "01", "10", "11", "20", "21"]
    assert only.coords["params.v"].values[0] == [1, 2]  # a list param is one coordinate value
    with pytest.raises(qa.InvalidInput, match="different subsystem dimensions"):
        annotated.runs(experiment="qudit").to_xarray()
    assert basis_labels([11, 2])[:3] == ["0,0", "0,1", "1,0"]


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


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_export_has_the_annotation_columns_of_to_pandas(
    annotated: qa.Archive, tmp_path: Path, suffix: str
) -> None:
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    refit(annotated)
    for run in annotated.runs(experiment="fitted"):
        run.set_tag("figure", "2" if run.params["p"] != 0.1 else "3")
        run.add_note(f"p={run.params['p']}")
    target = tmp_path / f"runs.{suffix}"
    asked = ["--column", "metadata.fit.chi2", "--column", "metadata.fit.model", "--with-notes"]
    result = CliRunner().invoke(
        cli,
        ["--data-dir", str(annotated.root), "export", "-e", "fitted", "-o", str(target), *asked],
    )
    assert result.exit_code == 0, result.output
    expected = annotated.runs(experiment="fitted").to_pandas(
        columns=["metadata.fit.chi2", "metadata.fit.model"], with_notes=True
    )
    if suffix == "csv":
        written = pd.read_csv(target, keep_default_na=False, na_values=[""])
    elif suffix == "jsonl":
        written = pd.read_json(target, lines=True, dtype=False)
    else:
        written = pd.read_parquet(target)
    assert list(written.columns) == list(expected.columns)
    assert list(written.columns)[-5:] == [
        "tags.figure", "notes", "notes.text", "metadata.fit.chi2", "metadata.fit.model",
    ]  # fmt: skip
    assert [str(v) for v in written["tags.figure"]] == list(expected["tags.figure"])
    assert list(written["notes"]) == list(expected["notes"]) == [1, 1, 1]
    assert list(written["notes.text"]) == list(expected["notes.text"])
    chi2 = list(written["metadata.fit.chi2"])
    assert chi2[0] == 3.5 and pd.isna(chi2[1]) and chi2[2] == 1.5  # newest first
    assert list(written["metadata.fit.model"]) == ["werner"] * 3


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
