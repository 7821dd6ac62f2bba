"""Rows changed by hand into what record would never write: check names them, and pack refuses
the one bad run by name."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import qex_archive as qa
from qex_archive.store.integrity import check_archive

from ..cli_tools import invoke, one_line_error
from ..conftest import bell_state


def test_pack_refuses_one_bad_run_by_name(tmp_path: Path, data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        good = arch.record("e", backend="b", state=bell_state())
        bad = arch.record("e", backend="b", state=bell_state())
        arch.conn.execute("UPDATE runs SET timestamp = 1e300 WHERE run_id = ?", (bad.run_id,))
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb")), bad.run_id)
    assert invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb"), good.run_id).exit_code == 0
    codes = {f["code"] for f in json.loads(invoke(data_dir, "check", "--json").output)["findings"]}
    assert "QEX-C014" in codes


def test_check_compares_the_state_summary_with_the_file(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        metadata = copy.deepcopy(run.metadata)  # run data is read-only
        assert metadata is not None
        metadata["state"]["dims"] = [4]
        metadata["state"]["shape"] = [2, 2]
        arch.conn.execute(
            "UPDATE runs SET metadata = ? WHERE run_id = ?", (json.dumps(metadata), run.run_id)
        )
        findings = check_archive(arch)
    assert [(f.code, f.run_id) for f in findings] == [("QEX-C018", run.run_id)]
