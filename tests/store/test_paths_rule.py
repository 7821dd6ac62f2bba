"""The one rule for reaching an archive's files: a row, however it was written, cannot make qex
read, pack, render or delete a file that is not its own, and a linked directory or file is
never followed."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.store.integrity import check_archive

from ..cli_tools import invoke, one_line_error
from ..conftest import bell_state

FOREIGN_ID = "0a0b0c0d-0000-4000-8000-00000000f00d"


def add_row(data_dir: Path, run_id: str, rho_path: str, *, artifact: str | None = None) -> None:
    """A run written by another tool, straight into the seed tables."""
    conn = sqlite3.connect(data_dir / "qex.db")
    with conn:
        conn.execute(
            "INSERT INTO runs VALUES (?, 'handmade', '{}', 'b', 1.7e9, ?, NULL)",
            (run_id, rho_path),
        )
        if artifact is not None:
            conn.execute(
                "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
                "VALUES (?, 'page', ?, 'text/html')",
                (run_id, artifact),
            )
    conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """An archive with one real run, and sentinel files beside and above it."""
    data_dir = tmp_path / "nest" / "qex_data"
    with qa.open_archive(data_dir) as arch:
        arch.record("real", backend="b", state=bell_state())
    beside = tmp_path / "nest" / "beside.npy"
    np.save(beside, np.eye(2, dtype=complex) / 2)
    above = tmp_path / "above.npy"
    above.write_bytes(beside.read_bytes())
    return {"data": data_dir, "beside": beside, "above": above}


ROW_PATHS = {
    "the database itself": ("qex.db", "QEX-C010"),
    "a parent directory": ("../beside.npy", "QEX-C010"),
    "an absolute path": ("{above}", "QEX-C010"),
    "a directory": ("results/sub", "QEX-C015"),
    "a backslash path": ("results\\..\\qex.db", "QEX-C010"),
    "a temporary name": ("results/.tmp-1-x_rho.npy", "QEX-C010"),
}


@pytest.mark.parametrize("case", sorted(ROW_PATHS))
def test_a_row_cannot_make_qex_touch_a_file_that_is_not_its_own(
    world: dict[str, Path], tmp_path: Path, case: str
) -> None:
    data_dir = world["data"]
    path, code = ROW_PATHS[case]
    path = path.format(above=world["above"])
    (data_dir / "results" / "sub").mkdir()
    add_row(data_dir, FOREIGN_ID, path)
    protected = {p: digest(p) for p in (world["beside"], world["above"], data_dir / "qex.db")}

    checked = invoke(data_dir, "check", "--json")
    assert checked.exit_code == 1
    codes = {(f["code"], f["run_id"]) for f in json.loads(checked.output)["findings"]}
    assert (code, FOREIGN_ID) in codes
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb"), FOREIGN_ID[:8]))
    assert not (tmp_path / "x.qexb").exists()
    one_line_error(invoke(data_dir, "render", FOREIGN_ID[:8], "--force"))
    with qa.open_archive(data_dir) as arch, pytest.raises(qa.ArchiveError):
        _ = arch.get(FOREIGN_ID).rho
    assert invoke(data_dir, "show", FOREIGN_ID[:8]).exit_code == 0
    assert invoke(data_dir, "rm", FOREIGN_ID[:8], "--yes").exit_code == 0
    assert invoke(data_dir, "gc").exit_code == 0
    for sentinel, before in protected.items():
        if sentinel.name != "qex.db":
            assert digest(sentinel) == before
    assert (data_dir / "qex.db").is_file() and (data_dir / "results" / "sub").is_dir()
    with qa.open_archive(data_dir) as arch:
        assert [r.experiment_name for r in arch.runs()] == ["real"]


def test_rm_keeps_a_file_another_run_still_refers_to(world: dict[str, Path]) -> None:
    data_dir = world["data"]
    with qa.open_archive(data_dir) as arch:
        real = arch.runs()[0]
    add_row(data_dir, FOREIGN_ID, real.density_matrix_path)
    findings = {(f.code, f.path) for f in check_archive(qa.open_archive(data_dir))}
    assert ("QEX-C016", real.density_matrix_path) in findings
    assert invoke(data_dir, "rm", FOREIGN_ID[:8], "--yes").exit_code == 0
    with qa.open_archive(data_dir) as arch:
        np.testing.assert_allclose(arch.get(real.run_id).rho, bell_state())
        assert check_archive(arch) == []


def test_a_linked_results_directory_is_never_followed(
    world: dict[str, Path], tmp_path: Path
) -> None:
    data_dir = world["data"]
    elsewhere = tmp_path / "elsewhere"
    shutil.move(data_dir / "results", elsewhere)
    unrelated = elsewhere / "unrelated_rho.npy"
    shutil.copy(world["beside"], unrelated)
    (data_dir / "results").symlink_to(elsewhere)
    before = digest(unrelated)

    assert invoke(data_dir, "gc").exit_code == 0
    assert unrelated.exists() and digest(unrelated) == before
    checked = json.loads(invoke(data_dir, "check", "--json").output)
    assert {"QEX-C017"} <= {f["code"] for f in checked["findings"]}
    np.save(tmp_path / "s.npy", np.eye(2) / 2)
    one_line_error(
        invoke(data_dir, "record", str(tmp_path / "s.npy"), "-e", "x", "-b", "b"),
        "results/ is a symbolic link",
    )
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb")))
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(
        [unrelated.name, *(p.name for p in elsewhere.iterdir() if p != unrelated)]
    )


def test_a_linked_density_matrix_is_not_read_packed_or_deleted(
    world: dict[str, Path], tmp_path: Path
) -> None:
    data_dir = world["data"]
    with qa.open_archive(data_dir) as arch:
        real = arch.runs()[0]
    stored = data_dir / real.density_matrix_path
    stored.unlink()
    stored.symlink_to(world["above"])
    before = digest(world["above"])
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb")), "symbolic link")
    assert not (tmp_path / "x.qexb").exists()
    codes = {f["code"] for f in json.loads(invoke(data_dir, "check", "--json").output)["findings"]}
    assert "QEX-C015" in codes
    assert invoke(data_dir, "rm", real.run_id[:8], "--yes").exit_code == 0
    assert invoke(data_dir, "gc").exit_code == 0
    assert digest(world["above"]) == before and stored.is_symlink()
