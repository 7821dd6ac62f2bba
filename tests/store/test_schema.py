"""The live database matches the user's schema document exactly."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

import qex_archive as qa
from qex_archive.store.migrations import LATEST_VERSION, MIGRATIONS

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "docs" / "sqlite-schema.md"
SHARED_SPEC = REPO.parent / "shared" / "spec" / "sqlite-schema.md"
# docs/sqlite-schema.md is the user's document (its SHA-256 below, so that the comparison
# runs everywhere), then qex's own tables after this line
OWN_PART = "\n<!-- Everything above is the user's schema document, unchanged"
USERS_DOCUMENT_SHA256 = "29653621856657b879ee326b134c5be31e095286619320a59415ac93f61c1586"
SEED_INDEXES = {"idx_runs_experiment_name", "idx_runs_timestamp", "idx_artifacts_run_id"}


def document_parts() -> tuple[str, str]:
    """The user's document, and the part about qex's own tables."""
    seed, marker, own = SPEC.read_text().partition(OWN_PART)
    assert marker, f"{SPEC} lacks the line that starts qex's own tables"
    return seed, own


def parse_spec(text: str) -> tuple[dict[str, list[tuple[str, str, str]]], list[tuple[str, str]]]:
    """Tables as {table: [(column, type, constraints)]} and indexes as [(table, column)]."""
    tables: dict[str, list[tuple[str, str, str]]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            current = heading.group(1)
            tables[current] = []
            continue
        row = re.match(r"^\| `(\w+)` \| (\w+) \|\s*([^|]*?)\s*\|", line)
        if row and current:
            tables[current].append((row.group(1), row.group(2), row.group(3).strip()))
    indexes = re.findall(r"^- Index on `(\w+)\.(\w+)`", text, flags=re.M)
    return tables, indexes


def test_spec_copy_is_the_users_document() -> None:
    """docs/ starts with the user's document byte for byte (and equals the original,
    shared/spec/sqlite-schema.md, where that lies beside the checkout, as in CI)."""
    seed, _ = document_parts()
    assert hashlib.sha256(seed.encode()).hexdigest() == USERS_DOCUMENT_SHA256
    if SHARED_SPEC.exists():
        assert seed == SHARED_SPEC.read_text()


def test_live_schema_matches_the_document(archive: qa.Archive) -> None:
    tables, indexes = parse_spec(document_parts()[0])
    assert set(tables) == {"runs", "artifacts"} and len(indexes) == 3
    conn = archive.conn
    for table, columns in tables.items():
        info = conn.execute(f"PRAGMA table_info({table})").fetchall()
        # (cid, name, type, notnull, default, pk): exactly the documented columns, in order
        assert [row[1] for row in info] == [c[0] for c in columns]
        for (_, name, col_type, notnull, _default, pk), (_, doc_type, constraints) in zip(
            info, columns, strict=True
        ):
            assert col_type == doc_type, name
            documented_pk = "PRIMARY KEY" in constraints
            assert bool(pk) == documented_pk, name
            if "NOT NULL" in constraints:
                assert notnull == 1, name
            elif not documented_pk:
                assert notnull == 0, f"{name} is documented as nullable"
        table_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()[0]
        has_autoincrement = any("AUTOINCREMENT" in c[2] for c in columns)
        assert ("AUTOINCREMENT" in table_sql.upper()) == has_autoincrement
        expected_fks = sorted(
            (c[0], *re.search(r"→ (\w+)\((\w+)\)", c[2]).groups())  # type: ignore[union-attr]
            for c in columns
            if "FOREIGN KEY" in c[2]
        )
        fks = sorted(
            (row[3], row[2], row[4]) for row in conn.execute(f"PRAGMA foreign_key_list({table})")
        )
        assert fks == expected_fks

    # the seed's indexes exactly, plus only qex's own (named qex_*)
    live_indexes = []
    for table in tables:
        for _seq, name, _unique, origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
            if origin == "c" and not name.startswith("qex_"):  # not PRIMARY KEY/UNIQUE ones
                cols = [r[2] for r in conn.execute(f"PRAGMA index_info({name})")]
                live_indexes.append((table, *cols))
    assert sorted(live_indexes) == sorted(indexes)
    own = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        if not name.startswith("sqlite_autoindex")
    } - SEED_INDEXES
    assert own and all(name.startswith(("qex_", "idx_qex_")) for name in own), own


def test_qex_own_tables_are_documented(archive: qa.Archive) -> None:
    """Every qex_* table of a new archive, column by column, and every index of qex's own, as
    docs/sqlite-schema.md describes them for SQL users."""
    tables, _ = parse_spec(document_parts()[1])
    conn = archive.conn
    live = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if name not in ("runs", "artifacts", "sqlite_sequence")
    }
    assert set(tables) == live
    for table, columns in tables.items():
        info = conn.execute(f"PRAGMA table_info({table})").fetchall()
        assert [row[1] for row in info] == [c[0] for c in columns], table
        for (_, name, col_type, notnull, default, pk), (_, doc_type, constraints) in zip(
            info, columns, strict=True
        ):
            where = f"{table}.{name}"
            assert col_type == doc_type, where
            assert bool(pk) == ("PRIMARY KEY" in constraints), where
            assert bool(notnull) == ("NOT NULL" in constraints), where
            documented_default = re.search(r"DEFAULT (\S+)", constraints)
            assert default == (documented_default and documented_default.group(1)), where
        table_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,)
        ).fetchone()[0]
        assert ("AUTOINCREMENT" in table_sql.upper()) == any(
            "AUTOINCREMENT" in c[2] for c in columns
        ), table
        assert ("UNIQUE" in table_sql.upper()) == any("UNIQUE" in c[2] for c in columns), table
        expected_fks = sorted(
            (c[0], *re.search(r"→ (\w+)\((\w+)\)", c[2]).groups())  # type: ignore[union-attr]
            for c in columns
            if "FOREIGN KEY" in c[2]
        )
        fks = sorted(
            (row[3], row[2], row[4]) for row in conn.execute(f"PRAGMA foreign_key_list({table})")
        )
        assert fks == expected_fks, table
    documented_indexes = set(re.findall(r"`((?:idx_)?qex_\w+)`\s+\(`", document_parts()[1]))
    live_indexes = {
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        if not name.startswith("sqlite_autoindex")
    } - SEED_INDEXES
    assert documented_indexes == live_indexes


def test_connection_settings(archive: qa.Archive) -> None:
    conn = archive.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_foreign_keys_are_enforced(archive: qa.Archive) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        archive.conn.execute(
            "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
            "VALUES ('nope', 'x', 'artifacts/x', 'text/html')"
        )


def test_migrations_are_named_in_sequence_and_recorded(archive: qa.Archive) -> None:
    names = [name for name, _ in MIGRATIONS]
    assert len(set(names)) == len(names)
    assert [int(name[1:4]) for name in names] == list(range(1, len(names) + 1))
    recorded = archive.conn.execute(
        "SELECT version, name FROM qex_migrations ORDER BY version"
    ).fetchall()
    assert recorded == list(enumerate(names, start=1))
    assert archive.conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION


def test_a_database_made_by_hand_from_the_document_is_adopted(data_dir: Path) -> None:
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "qex.db")
    conn.executescript(
        """
        CREATE TABLE runs (run_id TEXT PRIMARY KEY, experiment_name TEXT NOT NULL,
            params TEXT NOT NULL, backend_name TEXT NOT NULL, timestamp REAL NOT NULL,
            density_matrix_path TEXT NOT NULL, metadata TEXT);
        CREATE TABLE artifacts (artifact_id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL, artifact_name TEXT NOT NULL, artifact_path TEXT NOT NULL,
            artifact_type TEXT NOT NULL, FOREIGN KEY (run_id) REFERENCES runs(run_id));
        CREATE INDEX idx_runs_experiment_name ON runs(experiment_name);
        CREATE INDEX idx_runs_timestamp ON runs(timestamp);
        CREATE INDEX idx_artifacts_run_id ON artifacts(run_id);
        INSERT INTO runs VALUES ('11111111-2222-4333-8444-555555555555', 'old', '{}', 'sim',
            1700000000.0, 'results/11111111-2222-4333-8444-555555555555_rho.npy', NULL);
        """
    )
    conn.close()
    with qa.open_archive(data_dir) as arch:
        run = arch.get("1111")
        assert run.experiment_name == "old" and run.metadata is None
        assert arch.conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION


def test_an_archive_from_a_newer_version_is_refused(data_dir: Path) -> None:
    qa.open_archive(data_dir).close()
    conn = sqlite3.connect(data_dir / "qex.db")
    conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 3}")
    conn.commit()
    conn.close()
    with pytest.raises(
        qa.SchemaTooNew, match=rf"version {LATEST_VERSION + 3}.*pip install --upgrade"
    ):
        qa.open_archive(data_dir)


def test_a_file_that_is_not_a_database_is_a_clear_error(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "qex.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(qa.ArchiveError, match="not a usable SQLite database"):
        qa.open_archive(data_dir)
