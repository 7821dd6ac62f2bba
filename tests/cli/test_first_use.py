"""What a new user trips over in the first hour: open, the demo run twice, the missing-archive
hint, plugins switched off, tables that fit the terminal, inspect's times, shell completion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.bundle import pack_bundle
from qex_archive.cli import cli
from qex_archive.plugins import PluginEntryPoint, make_plugin_manager
from qex_archive.views.text import runs_table

from ..cli_tools import invoke, one_line_error
from ..conftest import bell_state


def test_open_shows_the_bloch_page_even_when_another_renderer_comes_first(
    data_dir: Path,
) -> None:
    example = pytest.importorskip("qex_example_renderer")
    plugins = make_plugin_manager(extra_plugins=[example])
    with qa.open_archive(data_dir, plugins=plugins, renderers=["heatmap", "bloch"]) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        assert [a.name for a in run.artifacts] == ["heatmap", "bloch"]
    shown = invoke(data_dir, "open", run.run_id[:8], "--print-path")
    assert shown.exit_code == 0 and shown.stdout.strip().endswith("_bloch.html")
    other = invoke(data_dir, "open", run.run_id[:8], "heatmap", "--print-path")
    assert other.stdout.strip().endswith("_heatmap.svg")
    wrong = invoke(data_dir, "open", run.run_id[:8], "nope")
    assert wrong.exit_code == 1 and "it has heatmap, bloch" in wrong.output


def test_a_second_demo_changes_nothing_and_fresh_replaces(data_dir: Path) -> None:
    assert invoke(data_dir, "demo").exit_code == 0
    with qa.open_archive(data_dir) as arch:
        first = {run.run_id for run in arch.runs(limit=None)}
    again = invoke(data_dir, "demo")
    assert again.exit_code == 0 and len(again.stdout.strip().splitlines()) == 1
    assert "41 demo runs are already" in again.stdout and "--fresh" in again.stdout
    with qa.open_archive(data_dir) as arch:
        assert {run.run_id for run in arch.runs(limit=None)} == first
        arch.record("mine", backend="b", state=bell_state())
    fresh = invoke(data_dir, "demo", "--fresh")
    assert fresh.exit_code == 0 and "replacing 41" in fresh.stdout
    with qa.open_archive(data_dir) as arch:
        now = {run.run_id for run in arch.runs(limit=None)}
        # the demo's fixed IDs come back, and the user's own run stays
        assert len(now) == 42 and first < now
        assert [r.experiment_name for r in arch.runs(experiment="mine")] == ["mine"]


def test_the_missing_archive_hint_names_the_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "lab" / "runs"
    result = invoke(elsewhere, "runs")
    assert result.exit_code == 1
    assert f"'qex-archive --data-dir {elsewhere} init'" in result.output
    default = CliRunner().invoke(cli, ["runs"])
    assert "create one with 'qex-archive init'" in default.output


def test_plugins_says_when_loading_is_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from qex_archive import plugins

    found = [PluginEntryPoint("qiskit", "qex_qiskit", "qex-qiskit", "0.1.0")]
    monkeypatch.setattr(plugins, "installed_entry_points", lambda: found)
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", "")
    output = CliRunner().invoke(cli, ["plugins"]).stdout
    assert "QEX_ARCHIVE_LOAD_PLUGINS=''" in output and "(qiskit)" in output
    assert "unset it" in output
    monkeypatch.setattr(plugins, "installed_entry_points", lambda: [])
    assert "no plugins installed" in CliRunner().invoke(cli, ["plugins"]).stdout


def test_tables_show_six_digits_and_fit_the_terminal(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record(
            "e",
            params={"theta": float(np.pi), "label": "x" * 200, "angles": [0.1234567891, 2.0]},
            backend="b",
            state=bell_state(),
        )
        table = runs_table([run])
        assert "theta=3.14159" in table and "3.141592653589793" not in table
        assert "angles=[0.123457,2]" in table
        narrow = runs_table([run], width=100)
        assert all(len(line) <= 100 for line in narrow.splitlines())
        assert narrow.splitlines()[1].endswith("…")
    shown = invoke(data_dir, "show", run.run_id[:8]).stdout
    assert "3.141592653589793" in shown  # show stays exact
    listed = json.loads(invoke(data_dir, "runs", "--json").stdout)
    assert listed[0]["params"]["theta"] == float(np.pi)


def test_inspect_labels_the_time_it_shows(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", backend="b", state=bell_state(), timestamp="2026-01-02T03:04:05Z")
        pack_bundle(arch, tmp_path / "b.qexb")
    shown = invoke(data_dir, "inspect", str(tmp_path / "b.qexb")).stdout
    assert "newest run 2026-01-02T03:04:05Z" in shown and "created" not in shown


def _complete(data_dir: Path, words: str) -> list[str]:
    env = {
        "_QEX_ARCHIVE_COMPLETE": "bash_complete",
        "COMP_WORDS": f"qex-archive --data-dir {data_dir} {words}",
        "COMP_CWORD": str(len(f"qex-archive --data-dir {data_dir} {words}".split(" ")) - 1),
    }
    result = CliRunner().invoke(cli, [], env=env, prog_name="qex-archive")
    return [line.split(",", 1)[1] for line in result.output.splitlines() if line]


def test_shell_completion_offers_runs_experiments_and_backends(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        runs = [
            arch.record(name, backend=backend, state=bell_state())
            for name, backend in [("ghz", "aer"), ("ghz", "aer"), ("rabi", "numpy")]
        ]
    first = runs[0].run_id
    assert _complete(data_dir, f"show {first[:3]}") == sorted(
        {r.run_id[:8] for r in runs if r.run_id.startswith(first[:3])}
    )
    assert _complete(data_dir, "runs -e ") == ["ghz", "rabi"]
    assert _complete(data_dir, "runs -e r") == ["rabi"]
    assert _complete(data_dir, "pack -b a") == ["aer"]
    assert _complete(data_dir / "missing", "show 1") == []


def test_counts_in_messages_agree_with_their_nouns(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", backend="b", state=bell_state())
    packed = invoke(data_dir, "pack", "-o", str(tmp_path / "one.qexb")).stdout
    assert "packed 1 run (" in packed and "1 runs" not in packed
    imported = invoke(tmp_path / "other", "import", str(tmp_path / "one.qexb")).stdout
    assert imported.startswith("imported 1 run from bundle")
    assert "ok: 1 run," in invoke(data_dir, "check").stdout


def test_a_repeated_data_dir_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-d", str(tmp_path / "a"), "-d", str(tmp_path / "b"), "runs"])
    assert result.exit_code == 2 and "--data-dir given 2 times" in result.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["tag", "abcd", "figure=2"],
        ["note", "abcd", "text"],
        ["pull", "lab"],
        ["record", "missing.npy"],
    ],
)
def test_a_writing_command_refused_on_a_new_archive_leaves_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    result = invoke(tmp_path / "new", *args)
    assert result.exit_code != 0
    assert not (tmp_path / "new").exists()


def test_a_writing_command_creates_the_archive_on_first_use(tmp_path: Path) -> None:
    result = invoke(tmp_path / "new", "remote", "add", "lab", str(tmp_path / "remote"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "qex.db").is_file()
    one_line_error(invoke(tmp_path / "missing", "runs"), "no archive at")
