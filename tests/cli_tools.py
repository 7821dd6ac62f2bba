"""Running the command line in tests, and what a refusal must look like."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from qex_archive.cli import cli


def invoke(data_dir: Path, *args: str, **kwargs: object) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], **kwargs)  # type: ignore[arg-type]


def one_line_error(result: object, *fragments: str) -> None:
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    lines = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
