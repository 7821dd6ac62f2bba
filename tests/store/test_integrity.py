"""``check`` finds missing, orphaned and damaged files; ``gc`` removes orphans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.store.integrity import check_archive, collect_garbage

from ..conftest import bell_state, snapshot


def codes(archive: qa.Archive, **kwargs: bool) -> list[tuple[str, str | None]]:
    return [(f.code, f.path) for f in check_archive(archive, **kwargs)]


def test_a_healthy_archive_has_no_findings(archive: qa.Archive) -> None:
    for _ in range(3):
        archive.record("e", backend="b", state=bell_state())
    assert check_archive(archive) == []


def test_a_deleted_npy_is_reported(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    run.rho_path.unlink()
    assert codes(archive) == [("QEX-C001", run.density_matrix_path)]


def test_an_orphan_file_is_reported_and_collected(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    orphan = archive.results_dir / "0000_rho.npy"
    orphan.write_bytes(b"x")
    temp = archive.artifacts_dir / ".tmp-123-abcd-x_bloch.html"
    temp.write_bytes(b"half")
    assert sorted(codes(archive)) == [
        ("QEX-C005", "results/0000_rho.npy"),
        ("QEX-C006", "artifacts/.tmp-123-abcd-x_bloch.html"),
    ]
    assert collect_garbage(archive, dry_run=True) == [
        "artifacts/.tmp-123-abcd-x_bloch.html",
        "results/0000_rho.npy",
    ]
    assert orphan.exists() and temp.exists()
    collect_garbage(archive)
    assert not orphan.exists() and not temp.exists()
    assert check_archive(archive) == []
    assert run.rho_path.exists()


def test_a_flipped_byte_is_reported(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=bell_state())
    data = bytearray(run.rho_path.read_bytes())
    data[-3] ^= 0x01
    run.rho_path.write_bytes(bytes(data))
    assert codes(archive) == [("QEX-C003", run.density_matrix_path)]
    # without hashing a same-size flip is invisible: that is why hashing is the default
    assert codes(archive, verify_checksums=False) == []


def test_a_truncated_or_mangled_npy_is_reported(archive: qa.Archive) -> None:
    short = archive.record("e", backend="b", state=bell_state())
    short.rho_path.write_bytes(short.rho_path.read_bytes()[:-16])
    mangled = archive.record("e", backend="b", state=bell_state())
    data = mangled.rho_path.read_bytes()
    mangled.rho_path.write_bytes(data.replace(b"<c16", b"<f16"))
    found = dict(codes(archive))
    assert {code: path for code, path in found.items()} == {
        "QEX-C002": short.density_matrix_path,
        "QEX-C004": mangled.density_matrix_path,
    }


def test_non_physical_states_are_warnings(archive: qa.Archive) -> None:
    run = archive.record("tomo", backend="b", state=np.array([[1.2, 0], [0, -0.2]]))
    (finding,) = check_archive(archive)
    assert (finding.code, finding.severity, finding.run_id) == ("QEX-C008", "warning", run.run_id)
    assert "positive semidefinite" in finding.message


def test_check_changes_nothing(archive: qa.Archive) -> None:
    archive.record("e", backend="b", state=bell_state())
    (archive.results_dir / "orphan.npy").write_bytes(b"x")
    before = snapshot(archive.root)
    check_archive(archive)
    assert snapshot(archive.root) == before


def damage(archive: qa.Archive, sql: str) -> qa.Run:
    """A second run whose row another tool wrote badly; the first stays healthy."""
    archive.record("e", params={"x": 1}, backend="b", state=bell_state())
    run = archive.record("e", params={"x": 2}, backend="b", state=bell_state())
    archive.conn.execute(sql + " WHERE run_id = ?", (run.run_id,))
    archive.conn.commit()
    return run


def run_cli(archive: qa.Archive, *args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from qex_archive.cli import cli

    result = CliRunner().invoke(cli, ["--data-dir", str(archive.root), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("sql", "code", "unreadable"),
    [
        ("UPDATE runs SET params = '{\"x\": '", "QEX-C013", "params"),
        ("UPDATE runs SET params = '[1, 2]'", "QEX-C013", "params"),
        ("UPDATE runs SET metadata = '[1]'", "QEX-C011", "metadata"),
        ("UPDATE runs SET metadata = 'not json'", "QEX-C011", "metadata"),
        ("UPDATE runs SET timestamp = '2026-11-26T10:00'", "QEX-C014", None),
    ],
)
def test_rows_written_badly_by_other_tools_are_reported_and_still_listed(
    archive: qa.Archive, sql: str, code: str, unreadable: str | None
) -> None:
    run = damage(archive, sql)
    assert [(f.code, f.run_id) for f in check_archive(archive)] == [(code, run.run_id)]
    fresh = archive.get(run.run_id)
    if unreadable:
        with pytest.raises(qa.ArchiveError, match=f"its {unreadable} in the database is not"):
            getattr(fresh, unreadable)
    status, listing = run_cli(archive, "runs")
    assert status == 0 and run.run_id[:8] in listing and listing.count("\n") == 3
    status, details = run_cli(archive, "show", run.run_id)
    assert status == 0 and run.run_id in details
    status, data = run_cli(archive, "runs", "--json")
    rows = {row["run_id"]: row for row in json.loads(data)}
    assert status == 0 and len(rows) == 2
    if unreadable:
        assert "damaged" in details and rows[run.run_id][unreadable] is None
        assert "not a JSON object" in rows[run.run_id]["damaged"][0]
    else:
        assert "2026-11-26T10:00" in listing
    status, filtered = run_cli(archive, "runs", "-p", "x=1")
    assert status == 0 and filtered.count("\n") == 2  # header and the healthy run
    status, _ = run_cli(archive, "check")
    assert status == 1


@pytest.mark.parametrize("renderers", [None, []], ids=["with its page", "matrix alone"])
def test_gc_and_check_leave_a_run_being_recorded_alone(
    tmp_path: Path, renderers: list[str] | None
) -> None:
    """A record writes its density matrix while the run is still being computed, before it
    holds the write lock; gc and check, run meanwhile from another connection, must neither
    remove that file nor call it an orphan."""
    from qex_archive import hookimpl
    from qex_archive.plugins import make_plugin_manager

    seen: dict[str, object] = {}

    class Meddler:  # runs gc and check after the matrix is written, before the rows are
        @hookimpl
        def qex_validate_run(self, run: qa.Run, rho: np.ndarray) -> None:
            with qa.open_archive(tmp_path / "a") as other:
                seen["removed"] = collect_garbage(other)
                seen["findings"] = check_archive(other)
                seen["files"] = sorted(p.name for p in (tmp_path / "a" / "results").iterdir())

    plugins = make_plugin_manager(extra_plugins=[Meddler()], load_third_party=False)
    with qa.open_archive(tmp_path / "a", plugins=plugins, renderers=renderers) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        assert len(seen["files"]) == 1  # the matrix was there, under its temporary name
        assert seen["removed"] == [] and seen["findings"] == []
        assert check_archive(arch) == []
        np.testing.assert_allclose(run.rho, bell_state())


def test_check_holds_the_write_lock_only_while_it_lists_the_files(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from qex_archive.store import integrity, tables

    archive.record("e", backend="b", state=bell_state())
    writer = sqlite3.connect(archive.db_path, timeout=0, isolation_level=None)
    outcomes: dict[str, str] = {}

    def try_to_write(when: str) -> None:
        try:
            writer.execute("BEGIN IMMEDIATE")
            writer.execute("ROLLBACK")
            outcomes[when] = "written"
        except sqlite3.OperationalError:
            outcomes[when] = "locked"

    listing, references = integrity.list_data_files, tables.references
    monkeypatch.setattr(
        integrity, "list_data_files", lambda root: try_to_write("listing") or listing(root)
    )
    monkeypatch.setattr(
        tables, "references", lambda conn: try_to_write("reading rows") or references(conn)
    )
    assert check_archive(archive) == []
    assert outcomes == {"listing": "locked", "reading rows": "written"}
    writer.close()


def test_gc_keeps_a_file_a_run_committed_since_its_snapshot_names(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc finds its candidates while writers go on; one that a run has named meanwhile (an
    import over an orphan of the same name) is kept."""
    import sqlite3

    from qex_archive.store import tables

    run = archive.record("e", backend="b", state=bell_state())
    rho = archive.root / run.density_matrix_path
    orphan = rho.with_name("0f0e0d0c-0b0a-4090-8070-605040302010_rho.npy")
    orphan.write_bytes(rho.read_bytes())
    stray = rho.with_name("1f0e0d0c-0b0a-4090-8070-605040302010_rho.npy")
    stray.write_bytes(b"left behind")
    references = tables.references

    def meanwhile(conn: sqlite3.Connection) -> list[tuple[str, str]]:
        found = references(conn)
        with sqlite3.connect(archive.db_path, isolation_level=None) as writer:
            writer.execute(  # another process commits a run whose matrix is that file
                "INSERT INTO runs SELECT '0f0e0d0c-0b0a-4090-8070-605040302010', "
                "experiment_name, params, backend_name, timestamp, ?, metadata FROM runs",
                (f"results/{orphan.name}",),
            )
        return found

    monkeypatch.setattr(tables, "references", meanwhile)
    removed = collect_garbage(archive)
    assert removed == [f"results/{stray.name}"]
    assert orphan.is_file() and not stray.exists()
