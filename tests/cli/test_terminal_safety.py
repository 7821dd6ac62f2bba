"""Nothing stored (names, params, metadata, a bundle's note) can steer the terminal: escapes are
shown escaped, and --json stays exact."""

from __future__ import annotations

import json
from pathlib import Path

import qex_archive as qa
from qex_archive.bundle import pack_bundle

from ..cli_tools import invoke
from ..conftest import bell_state

ESCAPES = "\x1b]0;owned\x07\x1b[2J\u202e\x9b31m"


def test_nothing_stored_can_steer_the_terminal(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record(
            "e", params={f"k{ESCAPES}": ESCAPES}, backend="b", state=bell_state(),
            metadata={"note": ESCAPES},
        )  # fmt: skip
        pack_bundle(arch, tmp_path / "b.qexb", note=ESCAPES)
        arch.conn.execute("UPDATE runs SET experiment_name = ? ", (f"x{ESCAPES}",))
    outputs = [
        invoke(data_dir, "runs").output,
        invoke(data_dir, "show", run.run_id[:8]).output,
        invoke(data_dir, "check").output,
        invoke(data_dir, "inspect", str(tmp_path / "b.qexb")).output,
        invoke(data_dir, "show", f"{ESCAPES}").output,
    ]
    for output in outputs:
        assert not any(ch in output for ch in "\x1b\x07\x9b\u202e"), repr(output)
    assert "\\x1b]0;owned" in outputs[1]
    shown = json.loads(invoke(data_dir, "show", "--json", run.run_id[:8]).output)
    assert shown["params"] == {f"k{ESCAPES}": ESCAPES}  # --json stays exact
