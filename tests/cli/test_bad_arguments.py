"""Bad arguments (huge numbers, lone surrogates, deep nesting, impossible limits) are one-line
errors, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

import qex_archive as qa

from ..cli_tools import invoke
from ..conftest import bell_state


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "-p", f"shots={10**20}"],
        ["runs", "-n", str(10**20)],
        ["runs", "--offset", str(10**20)],
        ["runs", "-e", "\udcff"],
        ["runs", "-p", "\udcff=1"],
        ["runs", "-p", "a=\udcff"],
        ["show", "\udcff"],
        ["show", "\U0010ffff"],
        ["rm", "\udcff", "--yes"],
        ["runs", "-p", "a=" + "[" * 5000 + "]" * 5000],
        ["verify", "x.qexb", "--max-total-size", "inf"],
        ["verify", "x.qexb", "--max-total-size", "-1"],
    ],
)
def test_bad_arguments_are_one_line_errors(data_dir: Path, args: list[str]) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", params={"shots": 1}, backend="b", state=bell_state())
    result = invoke(data_dir, *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and result.exit_code in (0, 1, 2), result.output
