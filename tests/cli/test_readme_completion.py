"""The shell-completion lines of the README work.

(In tests/ rather than tests/cli/ because the test finds README.md from this file's folder.)"""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from qex_archive.cli import cli


def test_completion_script_is_what_the_readme_says(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for shell in ("bash", "zsh", "fish"):
        assert f"_QEX_ARCHIVE_COMPLETE={shell}_source qex-archive" in readme
    env = {**os.environ, "_QEX_ARCHIVE_COMPLETE": "bash_source"}
    result = CliRunner().invoke(cli, [], env=env, prog_name="qex-archive")
    assert "_qex_archive_completion" in result.output
