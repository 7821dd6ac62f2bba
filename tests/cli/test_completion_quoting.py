"""Shell completion inserts names from the archive (which may come from a stranger's bundle)
quoted, so pressing Enter never runs what a name holds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import qex_archive as qa

from ..conftest import bell_state

HOSTILE = "ghz $(touch pwned) `touch pwned2` *"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_quotes_what_it_inserts(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record(HOSTILE, backend="b", state=bell_state())
    script = subprocess.run(
        ["qex-archive"],
        env={**os.environ, "_QEX_ARCHIVE_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # what bash does on Tab: the completion function fills COMPREPLY, inserted as it is
    driver = (
        script
        + f'\nCOMP_WORDS=(qex-archive --data-dir "{data_dir}" runs -e g); COMP_CWORD=5\n'
        + "_qex_archive_completion qex-archive\n"
        + 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    shell = tmp_path / "shell"
    shell.mkdir()
    (shell / "decoy").touch()  # a glob in the name must not expand to files either
    offered = subprocess.run(
        ["bash", "-c", driver], cwd=shell, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(offered) == 1
    # the user presses Enter: the inserted text is parsed by the shell
    typed = subprocess.run(
        ["bash", "-c", f"printf '%s' {offered[0]}"], cwd=shell, capture_output=True, text=True
    )
    assert typed.stdout == HOSTILE
    assert sorted(p.name for p in shell.iterdir()) == ["decoy"]  # nothing ran
