"""``compare``: parameters side by side, and how the states relate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli
from qex_archive.compare import compare_runs, comparison_text

from .conftest import bell_state


def invoke(data_dir: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


def noisy_bell(p: float) -> np.ndarray:
    return (1 - p) * bell_state() + p * np.eye(4) / 4


@pytest.fixture
def runs(data_dir: Path) -> list[qa.Run]:
    with qa.open_archive(data_dir) as arch:
        return [
            arch.record("bell", params={"p": p, "shots": 1024}, backend="sim", state=noisy_bell(p))
            for p in (0.0, 0.2, 0.4)
        ]


def test_parameters_that_differ_are_listed_the_rest_folded(runs: list[qa.Run]) -> None:
    comparison = compare_runs(runs)
    assert comparison.differing_params == ["p"] and comparison.same_params == {"shots": 1024}
    assert comparison.fidelity is not None and comparison.trace_distance is not None
    for i, a in enumerate(runs):
        for j, b in enumerate(runs):
            assert comparison.fidelity[i][j] == pytest.approx(qa.fidelity(a, b), abs=1e-12)
            assert comparison.trace_distance[i][j] == pytest.approx(qa.trace_distance(a, b))
    assert comparison.fidelity[0][2] == pytest.approx(1 - 0.4 * 3 / 4)
    assert comparison.bloch == [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]] * 3
    text = comparison_text(comparison, highlight=lambda t: f"<{t.strip()}>")
    assert "<0.4>" in text and "same in all: shots=1024" in text and "<1024>" not in text


def test_the_command_prints_a_table_or_json(data_dir: Path, runs: list[qa.Run]) -> None:
    ids = [run.run_id[:8] for run in runs]
    shown = invoke(data_dir, "compare", *ids)
    assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
    assert "fidelity" in shown.output and "trace distance" in shown.output  # type: ignore[attr-defined]
    data = json.loads(invoke(data_dir, "compare", "--json", *ids).output)  # type: ignore[attr-defined]
    assert [r["run_id"] for r in data["runs"]] == [run.run_id for run in runs]
    assert data["differing_params"] == ["p"] and data["problems"] == []
    one = invoke(data_dir, "compare", ids[0])
    assert one.exit_code == 1 and "at least two runs" in one.output  # type: ignore[attr-defined]


def test_different_dimensions_still_show_the_parameters(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        a = arch.record("x", params={"theta": 0.1}, backend="b", state=bell_state())
        b = arch.record("y", params={"phi": 2}, backend="b", state=np.eye(2) / 2)
        comparison = compare_runs([a, b])
    assert comparison.fidelity is None and comparison.differing_params == ["phi", "theta"]
    assert "different dimensions" in comparison.problems[0]
    text = comparison_text(comparison)
    assert "—" in text and "note: the states have different dimensions" in text


def test_non_physical_runs_are_compared_as_stored_and_named(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        raw = arch.record("t", backend="b", state=np.array([[1.1, 0], [0, -0.1]]))
        mixed = arch.record("t", backend="b", state=np.eye(2) / 2)
        comparison = compare_runs([raw, mixed])
    assert comparison.non_physical == [raw.run_id]
    assert comparison.fidelity is not None and comparison.fidelity[0][1] > 0.93
    assert f"not physical, used as stored: {raw.run_id[:8]}" in comparison_text(comparison)


def test_a_missing_density_matrix_is_a_note_not_a_crash(data_dir: Path, runs: list[qa.Run]) -> None:
    (data_dir / runs[1].density_matrix_path).unlink()
    with qa.open_archive(data_dir) as arch:
        comparison = compare_runs([arch.get(r.run_id) for r in runs])
    assert comparison.fidelity is None and "is missing" in comparison.problems[0]
    assert comparison.differing_params == ["p"]


def test_on_a_terminal_qex_bold_stays_bold_and_stored_escapes_are_shown(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compare`` on a terminal: the bold reaches it as bold, not as the text ``\\x1b[1m``;
    an escape stored in a parameter's name is still shown as text, never sent."""
    import click.testing

    with qa.open_archive(data_dir) as arch:
        arch.record("ghz", params={"p": 0.1}, backend="b", state=bell_state())
        arch.record("ghz", params={"\x1b]0;owned\x07": 1}, backend="b", state=bell_state())
    # the runner's stdout says it is a terminal, and click keeps styles on it
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)
    done = CliRunner().invoke(
        cli, ["--data-dir", str(data_dir), "compare", "-e", "ghz"], color=True
    )
    assert done.exit_code == 0, done.output
    out = done.output
    assert "\x1b[1m" in out and "\\x1b[1m" not in out  # qex's bold, as bold
    assert "\x1b]" not in out and "\x07" not in out  # the stored escape is not sent ...
    assert "\\x1b]0;owned\\x07" in out  # ... but shown
    assert out.count("\x1b[") == out.count("\x1b")  # every escape sent is a style of qex's
