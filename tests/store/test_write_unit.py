"""The one write unit: every change goes through it, and work begun inside a batch (an import,
a gc, a delete, a tag) joins the batch's transaction instead of failing."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, importer, pack_bundle
from qex_archive.store.integrity import check_archive, collect_garbage

from ..conftest import bell_state


def _bundle(tmp_path: Path, count: int = 2) -> tuple[Path, list[str]]:
    with qa.open_archive(tmp_path / "source") as source:
        ids = [
            source.record("shared", params={"i": i}, backend="b", state=bell_state()).run_id
            for i in range(count)
        ]
        pack_bundle(source, tmp_path / "shared.qexb")
    return tmp_path / "shared.qexb", ids


def test_an_import_inside_a_batch_joins_it(tmp_path: Path) -> None:
    bundle, ids = _bundle(tmp_path)
    with qa.open_archive(tmp_path / "target") as arch:
        with arch.batch():
            local = arch.record("local", backend="b", state=bell_state())
            report = import_bundle(arch, bundle)
            assert sorted(report.imported) == sorted(ids)
        assert sorted(r.run_id for r in arch.runs()) == sorted([local.run_id, *ids])
        assert check_archive(arch) == []


def test_a_batch_that_fails_after_an_import_keeps_nothing_of_either(tmp_path: Path) -> None:
    bundle, _ = _bundle(tmp_path)
    with qa.open_archive(tmp_path / "target") as arch:
        arch.record("kept", backend="b", state=bell_state())
        with pytest.raises(RuntimeError, match="stop"), arch.batch():
            arch.record("local", backend="b", state=bell_state())
            import_bundle(arch, bundle)
            raise RuntimeError("stop")
        assert [r.experiment_name for r in arch.runs()] == ["kept"]
        assert check_archive(arch) == []  # no file of the import or the record left behind


def test_an_import_that_fails_inside_a_batch_leaves_the_batch_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle, _ = _bundle(tmp_path)
    with qa.open_archive(tmp_path / "target") as arch:
        with arch.batch():
            first = arch.record("local", backend="b", state=bell_state())

            def full(*args: object) -> None:
                raise OSError(errno.ENOSPC, "No space left on device")

            with monkeypatch.context() as patched:
                # after the files were moved into place and the runs' rows inserted
                patched.setattr(importer.tables, "insert_imports", full)
                with pytest.raises(qa.QexError, match="cannot import the bundle: the disk is full"):
                    import_bundle(arch, bundle)
            second = arch.record("local", backend="b", state=bell_state())
        assert sorted(r.run_id for r in arch.runs()) == sorted([first.run_id, second.run_id])
        assert check_archive(arch) == []  # the moved files went with the import's rows


def test_gc_inside_a_batch_removes_orphans_and_nothing_the_batch_needs(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "target") as arch:
        doomed = arch.record("doomed", backend="b", state=bell_state())
        kept = arch.record("kept", backend="b", state=bell_state())
        orphan = arch.root / "results" / "0123abcd-0000-4000-8000-000000000000_rho.npy"
        orphan.write_bytes(b"not referenced")
        with pytest.raises(RuntimeError, match="stop"), arch.batch():
            fresh = arch.record("fresh", backend="b", state=bell_state())
            arch.delete(doomed.run_id)
            removed = collect_garbage(arch)
            # the orphan goes; the new run's files and the deleted run's (still named for
            # everyone else until the batch commits) stay
            assert removed == ["results/0123abcd-0000-4000-8000-000000000000_rho.npy"]
            assert (arch.root / fresh.density_matrix_path).is_file()
            assert (arch.root / doomed.density_matrix_path).is_file()
            raise RuntimeError("stop")
        # the batch rolled back: the deleted run is back, with its files
        assert sorted(r.run_id for r in arch.runs()) == sorted([doomed.run_id, kept.run_id])
        np.testing.assert_array_equal(arch.get(doomed.run_id).rho, bell_state())
        assert check_archive(arch) == []


def test_gc_and_check_inside_a_batch_that_commits(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "target") as arch:
        doomed = arch.record("doomed", backend="b", state=bell_state())
        with arch.batch():
            fresh = arch.record("fresh", backend="b", state=bell_state())
            arch.delete(doomed.run_id)
            assert collect_garbage(arch) == []
            assert check_archive(arch) == []
        assert [r.run_id for r in arch.runs()] == [fresh.run_id]
        assert not (arch.root / doomed.density_matrix_path).exists()
        assert check_archive(arch) == []


def test_tags_notes_and_deletes_inside_a_batch_commit_with_it(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "target") as arch:
        run = arch.record("e", backend="b", state=bell_state())
        with pytest.raises(RuntimeError), arch.batch():
            run.set_tag("figure", "2")
            run.add_note("looks fine")
            raise RuntimeError("stop")
        assert arch.get(run.run_id).tags == {} and arch.get(run.run_id).notes == []
        with arch.batch():
            run.set_tag("figure", "2")
            with pytest.raises(qa.InvalidInput):
                run.set_tag("", "x")  # refused: the batch goes on without it
            run.add_note("looks fine")
        again = arch.get(run.run_id)
        assert again.tags == {"figure": "2"} and [n["text"] for n in again.notes] == ["looks fine"]


def test_a_nested_batch_is_a_part_of_the_outer_one(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "target") as arch:
        with arch.batch():
            first = arch.record("outer", backend="b", state=bell_state())
            with pytest.raises(RuntimeError), arch.batch():
                arch.record("inner", backend="b", state=bell_state())
                raise RuntimeError("inner fails")
            second = arch.record("outer", backend="b", state=bell_state())
        assert sorted(r.run_id for r in arch.runs()) == sorted([first.run_id, second.run_id])
        assert check_archive(arch) == []


def test_sqlite3_is_imported_only_by_the_store() -> None:
    root = Path(qa.__file__).parent
    outside = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "store" not in path.relative_to(root).parts
        and any(
            line.strip().startswith(("import sqlite3", "from sqlite3"))
            for line in path.read_text().splitlines()
        )
    ]
    assert outside == []


def test_a_failure_that_ends_the_transaction_ends_the_batch(tmp_path: Path) -> None:
    """SQLite rolls back the whole transaction on a full disk: the batch is gone, says so, and
    nothing recorded after it in the same block is committed (without its files)."""
    with qa.open_archive(tmp_path / "target") as arch:
        kept = arch.record("kept", backend="b", state=bell_state())
        with pytest.raises(qa.QexError, match="the batch was rolled back"), arch.batch():
            arch.record("lost", backend="b", state=bell_state())
            pages = arch.conn.execute("PRAGMA page_count").fetchone()[0]
            arch.conn.execute(f"PRAGMA max_page_count = {pages}")
            with pytest.raises(qa.QexError, match="the whole batch was rolled back") as caught:
                arch.record("big", params={"x": "y" * 200_000}, backend="b", state=bell_state())
            assert "\n" not in str(caught.value) and "disk is full" in str(caught.value)
            arch.conn.execute("PRAGMA max_page_count = 1000000")
            arch.record("after", backend="b", state=bell_state())  # refused: the batch is gone
    with qa.open_archive(tmp_path / "target") as arch:
        assert [r.run_id for r in arch.runs()] == [kept.run_id]
        assert check_archive(arch) == []
