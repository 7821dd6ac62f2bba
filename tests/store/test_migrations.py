"""Opening archives whose schema bookkeeping is unusual: restored from an SQL dump (the
migrations table is the truth, not ``user_version``), or newer than this qex on a read-only
mount (the upgrade hint, not a closed-database error)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

import qex_archive as qa
from qex_archive import opening
from qex_archive.store.integrity import check_archive
from qex_archive.store.migrations import LATEST_VERSION

from ..conftest import bell_state


def test_an_archive_restored_from_an_sql_dump_opens_as_it_was(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "old") as arch:
        runs = [
            arch.record("e", params={"i": i}, backend="b", state=bell_state()) for i in range(2)
        ]
        runs[0].set_tag("figure", "2")
        runs[1].add_note("kept")
        dump = "\n".join(arch.conn.iterdump())
    restored = tmp_path / "restored"
    restored.mkdir()
    for folder in ("results", "artifacts"):
        shutil.copytree(tmp_path / "old" / folder, restored / folder)
    conn = sqlite3.connect(restored / "qex.db")
    conn.executescript(dump)  # what `sqlite3 old.db .dump | sqlite3 new.db` does
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    with qa.open_archive(restored) as arch:
        assert sorted(r.run_id for r in arch.runs()) == sorted(r.run_id for r in runs)
        assert arch.get(runs[0].run_id).tags == {"figure": "2"}
        assert [n["text"] for n in arch.get(runs[1].run_id).notes] == ["kept"]
        assert check_archive(arch) == []
        assert arch.conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        versions = [v for (v,) in arch.conn.execute("SELECT version FROM qex_migrations")]
        assert versions == list(range(1, LATEST_VERSION + 1))


def test_a_newer_archive_on_a_read_only_mount_gets_the_upgrade_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with qa.open_archive(tmp_path / "qex_data") as arch:
        arch.record("e", backend="b", state=bell_state())
        arch.conn.execute(
            "INSERT INTO qex_migrations (version, name, applied_at) VALUES (?, 'm999_future', 0)",
            (LATEST_VERSION + 1,),
        )
        arch.conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    monkeypatch.setattr(opening, "_read_only_reason", lambda root, db: "a read-only mount")
    with pytest.raises(qa.SchemaTooNew, match="pip install --upgrade qex-archive"):
        qa.open_archive(tmp_path / "qex_data")


def test_pages_an_earlier_render_renamed_get_their_seed_names_back(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "qex_data") as arch:
        run = arch.record("e", backend="b", state=bell_state())
        (page,) = run.artifacts
        # what render did before: a second name, the rows switched to it
        old = f"artifacts/{run.run_id}_bloch-1a2b3c4d.html"
        page.path.rename(arch.root / old)
        arch.conn.execute("UPDATE artifacts SET artifact_path = ?", (old,))
        arch.conn.execute("UPDATE qex_files SET path = ? WHERE path = ?", (old, page.relative_path))
        # an archive of the eight migrations before m009 (those after it make their tables
        # only if they are missing)
        arch.conn.execute("DELETE FROM qex_migrations WHERE version >= 9")
        arch.conn.execute("PRAGMA user_version = 8")
        content = (arch.root / old).read_bytes()
    with qa.open_archive(tmp_path / "qex_data") as arch:
        (back,) = arch.get(run.run_id).artifacts
        assert back.relative_path == f"artifacts/{run.run_id}_bloch.html"
        assert back.path.read_bytes() == content
        assert not (arch.root / old).exists()
        assert check_archive(arch) == []
