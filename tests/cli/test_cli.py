"""The command line: a thin layer over the library with one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result

import qex_archive as qa
from qex_archive.cli import cli

from ..conftest import bell_state, snapshot


def invoke(data_dir: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], input=input)


def assert_one_line_error(result: Result, fragment: str) -> None:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


@pytest.fixture
def demo_dir(data_dir: Path) -> Path:
    result = invoke(data_dir, "demo")
    assert result.exit_code == 0, result.output
    return data_dir


def test_demo_fills_an_archive_with_simulated_runs(demo_dir: Path) -> None:
    with qa.open_archive(demo_dir) as arch:
        experiments = {r.experiment_name for r in arch.runs()}
        assert experiments == {"rabi_sweep", "ghz_depolarizing", "tomography_1q"}
        assert 30 <= arch.count() <= 60
        ghz = arch.runs(experiment="ghz_depolarizing", where={"n_qubits": 3, "depolarizing": 0.0})
        assert len(ghz) == 1 and ghz[0].dims == [2, 2, 2]
        assert ghz[0].validation["purity"] == pytest.approx(1)
        assert any(not r.validation["is_valid"] for r in arch.runs(experiment="tomography_1q"))


def test_runs_table(demo_dir: Path) -> None:
    result = invoke(demo_dir, "runs", "-e", "ghz_depolarizing", "-p", "n_qubits=2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "RUN",
        "TIME",
        "EXPERIMENT",
        "BACKEND",
        "DIMS",
        "PURITY",
        "VALID",
        "PARAMS",
    ]
    assert len(lines) == 6 and all(
        "ghz_depolarizing" in line and " 2q " in line for line in lines[1:]
    )


def test_runs_json_and_jsonl_carry_the_same_runs(demo_dir: Path) -> None:
    as_json = json.loads(invoke(demo_dir, "runs", "--json", "-p", "depolarizing>=0.2").stdout)
    as_jsonl = [
        json.loads(line)
        for line in invoke(
            demo_dir, "runs", "--jsonl", "-p", "depolarizing>=0.2"
        ).stdout.splitlines()
    ]
    assert as_json == as_jsonl and len(as_json) == 6
    assert all(run["params"]["depolarizing"] >= 0.2 for run in as_json)
    with qa.open_archive(demo_dir) as arch:
        assert as_json[0] == arch.get(as_json[0]["run_id"]).to_dict()


@pytest.mark.parametrize("per_batch", [1, 7, 1000])
def test_runs_are_printed_a_batch_at_a_time_as_one_json_document(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch, per_batch: int
) -> None:
    from qex_archive.cli import archive_commands

    monkeypatch.setattr(archive_commands, "RUNS_PER_BATCH", per_batch)
    with qa.open_archive(demo_dir) as arch:
        runs = arch.runs()
        expected = [run.to_dict() for run in runs]
    printed = invoke(demo_dir, "runs", "--all", "--json").stdout
    # laid out as one json.dumps of the whole list would lay it out
    assert printed == json.dumps(expected, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    lines = invoke(demo_dir, "runs", "--all", "--jsonl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert invoke(demo_dir, "runs", "-e", "none", "--json").stdout == "[]\n"
    assert invoke(demo_dir, "runs", "-e", "none", "--jsonl").stdout == ""


def test_runs_limit_says_how_many_were_left_out(demo_dir: Path) -> None:
    result = invoke(demo_dir, "runs", "--limit", "5")
    assert len(result.stdout.splitlines()) == 6
    assert "showing 5 of 41 matching runs" in result.stderr
    assert len(json.loads(invoke(demo_dir, "runs", "--all", "--json").stdout)) == 41


def test_show_by_prefix(demo_dir: Path) -> None:
    with qa.open_archive(demo_dir) as arch:
        run = arch.runs(experiment="tomography_1q", where={"shots": 16})[0]
    result = invoke(demo_dir, "show", run.run_id[:8])
    assert result.exit_code == 0
    assert run.run_id in result.stdout and "NOT PHYSICAL" in result.stdout
    shown = json.loads(invoke(demo_dir, "show", run.run_id[:8], "--json").stdout)
    assert shown["run_id"] == run.run_id and shown["params"]["shots"] == 16


def test_record_from_a_npy_file(tmp_path: Path, data_dir: Path) -> None:
    state_file = tmp_path / "rho.npy"
    np.save(state_file, bell_state())
    result = invoke(
        data_dir,
        "record",
        str(state_file),
        "-e",
        "bell",
        "-b",
        "aer",
        "-p",
        "shots=1024",
        "-p",
        "theta=0.25",
        "-p",
        "label=first",
        "-p",
        "tags=[1,2]",
        "--metadata",
        '{"operator": "ada"}',
    )
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip()
    with qa.open_archive(data_dir) as arch:
        run = arch.get(run_id)
        assert run.params == {"shots": 1024, "theta": 0.25, "label": "first", "tags": [1, 2]}
        assert run.metadata is not None and run.metadata["operator"] == "ada"
        np.testing.assert_array_equal(run.rho, bell_state())


def test_record_qudits_and_non_physical_warning(tmp_path: Path, data_dir: Path) -> None:
    state_file = tmp_path / "rho.npy"
    np.save(state_file, np.diag([1.2, -0.1, -0.1]))
    result = invoke(data_dir, "record", str(state_file), "-e", "q", "-b", "b", "--dims", "3")
    assert result.exit_code == 0
    assert "warning: stored a non-physical state" in result.stderr
    strict = invoke(
        data_dir, "record", str(state_file), "-e", "q", "-b", "b", "--dims", "3", "--strict"
    )
    assert_one_line_error(strict, "state is not physical")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["-p", "shots"], "--param 'shots' is not KEY=VALUE"),
        (["-p", "a=1", "-p", "a=2"], "--param 'a' is given twice"),
        (["-p", "x=NaN"], None),  # stored as the text "NaN", not a float
        (["--metadata", "{oops"], "--metadata is not valid JSON"),
        (["--metadata", "[1]"], "metadata must be a dict"),
        (["--dims", "2,x"], "--dims '2,x' is not a comma-separated list"),
        (["--dims", "3"], "dims [3] multiply to 3"),
        (["--timestamp", "soon"], "timestamp 'soon' is not a time"),
        (["-e", ""], "experiment name is empty"),
    ],
)
def test_record_bad_options(
    tmp_path: Path, data_dir: Path, extra: list[str], fragment: str | None
) -> None:
    state_file = tmp_path / "rho.npy"
    np.save(state_file, bell_state())
    qa.open_archive(data_dir).close()
    before = snapshot(data_dir)
    result = invoke(data_dir, "record", str(state_file), "-e", "x", "-b", "b", *extra)
    if fragment is None:
        assert result.exit_code == 0
        with qa.open_archive(data_dir) as arch:
            assert arch.runs()[0].params == {"x": "NaN"}
        return
    assert_one_line_error(result, fragment)
    assert snapshot(data_dir) == before


def test_record_refuses_pickled_and_broken_files(tmp_path: Path, data_dir: Path) -> None:
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_one_line_error(
        invoke(data_dir, "record", str(pickled), "-e", "x", "-b", "b"), "cannot read"
    )
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy")
    assert_one_line_error(
        invoke(data_dir, "record", str(junk), "-e", "x", "-b", "b"), "cannot read"
    )


def test_unknown_run_is_a_one_line_error(demo_dir: Path) -> None:
    assert_one_line_error(invoke(demo_dir, "show", "zzzz"), "no run with ID or prefix 'zzzz'")


def test_commands_on_a_missing_archive_do_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for args in (["runs"], ["show", "abc"], ["check"], ["gc"], ["rm", "abc", "-y"]):
        assert_one_line_error(invoke(missing, *args), "no archive at")
    assert not missing.exists()


def test_bad_filters_are_one_line_errors(demo_dir: Path) -> None:
    assert_one_line_error(invoke(demo_dir, "runs", "--since", "someday"), "is not a time")
    assert_one_line_error(invoke(demo_dir, "runs", "-p", "x~1"), "is not KEY=VALUE")


def test_rm_asks_first(demo_dir: Path) -> None:
    with qa.open_archive(demo_dir) as arch:
        run = arch.runs(limit=1)[0]
    refused = invoke(demo_dir, "rm", run.run_id[:8], input="n\n")
    assert refused.exit_code == 1
    with qa.open_archive(demo_dir) as arch:
        assert arch.get(run.run_id)
    accepted = invoke(demo_dir, "rm", run.run_id[:8], input="y\n")
    assert accepted.exit_code == 0 and f"deleted {run.run_id}" in accepted.stdout
    with qa.open_archive(demo_dir) as arch, pytest.raises(qa.RunNotFound):
        arch.get(run.run_id)
    assert not run.rho_path.exists()
    assert not list((demo_dir / "artifacts").glob(f"{run.run_id}*"))
    assert invoke(demo_dir, "check").exit_code == 0


def test_rm_of_several_runs_is_all_or_nothing(demo_dir: Path) -> None:
    with qa.open_archive(demo_dir) as arch:
        run = arch.runs(limit=1)[0]
    before = snapshot(demo_dir)
    assert_one_line_error(invoke(demo_dir, "rm", run.run_id, "ffffffff", "--yes"), "no run with ID")
    assert snapshot(demo_dir) == before


def test_check_and_gc(demo_dir: Path) -> None:
    ok = invoke(demo_dir, "check")
    assert ok.exit_code == 0 and "QEX-C008 warning" in ok.stdout  # the demo's raw tomography
    assert invoke(demo_dir, "check", "--strict").exit_code == 1
    (demo_dir / "results" / "stray.npy").write_bytes(b"x")
    broken = invoke(demo_dir, "check", "--json")
    assert broken.exit_code == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False and report["runs"] == 41
    assert {f["code"] for f in report["findings"]} == {"QEX-C005", "QEX-C008"}
    assert "would remove results/stray.npy" in invoke(demo_dir, "gc", "--dry-run").stdout
    assert "removed results/stray.npy" in invoke(demo_dir, "gc").stdout
    assert invoke(demo_dir, "check").exit_code == 0
    assert "nothing to remove" in invoke(demo_dir, "gc").stdout


def test_init_reports_the_archive(data_dir: Path) -> None:
    result = invoke(data_dir, "init")
    assert result.exit_code == 0 and "(0 runs)" in result.stdout
    assert (data_dir / "qex.db").is_file()


def all_commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def test_every_command_has_an_example_in_its_help() -> None:
    for name, command in all_commands().items():
        assert "Example:" in (command.help or ""), name


def test_each_builtin_command_is_loaded_from_the_module_the_group_names() -> None:
    from qex_archive.cli import COMMAND_MODULES

    builtins = {
        name: command.callback.__module__.rsplit(".", 1)[-1]
        for name, command in all_commands().items()
        if command.callback is not None and command.callback.__module__.startswith("qex_archive")
    }
    builtins["remote"] = "remote_commands"  # a group: its callback is click's
    assert builtins == COMMAND_MODULES


LEAN_COMMAND_SCRIPT = """
import sys
from qex_archive.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
heavy = ["numpy", "qex_archive.bundle", "subprocess", "hashlib", "pluggy"]
loaded = " ".join(name for name in heavy if name in sys.modules) or "-"
commands = sorted(name for name in sys.modules if name.startswith("qex_archive.cli."))
print(loaded, *commands, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [["runs"], ["show", "x"], ["runs", "--json"], ["runs", "-e", "bell", "--jsonl"]]
)
def test_listing_runs_imports_only_what_it_needs(demo_dir: Path, args: list[str]) -> None:
    """Start-up time: listing runs loads neither numpy, the bundle code, the plugins nor the
    other command modules."""
    done = subprocess.run(
        [sys.executable, "-c", LEAN_COMMAND_SCRIPT, "--data-dir", str(demo_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    heavy, *commands = done.stderr.strip().splitlines()[-1].split()
    assert heavy == "-", done.stderr
    assert commands == ["qex_archive.cli.archive_commands"]


@pytest.mark.parametrize("args", [["--help"], ["check"]])
def test_commands_that_do_not_need_numpy_do_not_import_it(demo_dir: Path, args: list[str]) -> None:
    script = (
        "import sys\n"
        "from qex_archive.cli import cli\n"
        f"try:\n    cli({['--data-dir', str(demo_dir), *args]!r})\n"
        "except SystemExit:\n    pass\n"
        "print('NUMPY' if 'numpy' in sys.modules else 'NO-NUMPY', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.stderr.strip().splitlines()[-1] == "NO-NUMPY", done.stderr


def test_the_console_script_and_module_entry_points_work(demo_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qex_archive", "--data-dir", str(demo_dir), "runs", "--limit", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("RUN")
    version = subprocess.run(
        [sys.executable, "-m", "qex_archive", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert qa.__version__ in version.stdout


def test_render_makes_artifacts_again(demo_dir: Path) -> None:
    with qa.open_archive(demo_dir) as arch:
        run = arch.runs(limit=1)[0]
        (artifact,) = run.artifacts
    artifact.path.unlink()
    assert invoke(demo_dir, "check").exit_code == 1
    result = invoke(demo_dir, "render", run.run_id[:8])
    assert result.exit_code == 0 and result.stdout.startswith("bloch: ")
    with qa.open_archive(demo_dir) as arch:
        (rendered,) = arch.get(run.run_id).artifacts
    assert rendered.path.is_file() and invoke(demo_dir, "check").exit_code == 0
    assert_one_line_error(
        invoke(demo_dir, "render", run.run_id[:8], "-r", "nope"), "no renderer named 'nope'"
    )


def test_open_uses_the_browser_or_prints_the_path(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser_from_env: None
) -> None:
    with qa.open_archive(demo_dir) as arch:
        run = arch.runs(limit=1)[0]
        (artifact,) = run.artifacts
    printed = invoke(demo_dir, "open", run.run_id[:8], "--print-path")
    assert printed.stdout.strip() == str(artifact.path)
    log = tmp_path / "browser.log"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {log}\n')
    browser.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(browser))
    assert invoke(demo_dir, "open", run.run_id[:8], "bloch").exit_code == 0
    for _ in range(50):  # webbrowser may start the command in the background
        if log.exists():
            break
        import time

        time.sleep(0.1)
    assert log.read_text().strip() == artifact.path.resolve().as_uri()
    assert_one_line_error(
        invoke(demo_dir, "open", run.run_id[:8], "heatmap"),
        "has no artifact 'heatmap'; it has bloch",
    )


def test_open_a_run_without_artifacts(tmp_path: Path, data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state(), renderers=[])
    assert_one_line_error(
        invoke(data_dir, "open", run.run_id[:8]), "has no artifacts; make them with"
    )


def test_plugin_failures_are_one_line_warnings(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.views import bloch

    def broken(*args: object) -> bytes:
        raise RuntimeError("out of ink")

    monkeypatch.setattr(bloch, "bloch_page", broken)
    state_file = tmp_path / "rho.npy"
    np.save(state_file, bell_state())
    result = invoke(data_dir, "record", str(state_file), "-e", "x", "-b", "b")
    assert result.exit_code == 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(
        "warning: plugin 'renderer bloch' failed in render: RuntimeError: out of ink"
    )
    assert invoke(data_dir, "check").exit_code == 0


def test_quiet_silences_notes_but_not_output(demo_dir: Path) -> None:
    noisy = invoke(demo_dir, "runs", "--limit", "2")
    assert "showing 2 of 41" in noisy.stderr
    quiet = CliRunner().invoke(
        cli, ["--quiet", "--data-dir", str(demo_dir), "runs", "--limit", "2"]
    )
    assert quiet.stderr == "" and quiet.stdout == noisy.stdout


def test_unwritable_and_missing_paths_are_one_line_errors(demo_dir: Path, tmp_path: Path) -> None:
    assert_one_line_error(
        invoke(demo_dir, "pack", "-o", str(tmp_path / "missing" / "x.qexb")), "does not exist"
    )
    # /proc refuses new files even to root: the OSError path, not the library's own check
    assert_one_line_error(
        invoke(demo_dir, "pack", "-o", "/proc/x.qexb"), "No such file or directory"
    )
