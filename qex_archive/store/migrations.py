"""Named, ordered schema migrations.

Version N of the schema is the state after the first N migrations. Each applied migration is
recorded in ``qex_migrations`` and the version is kept in ``PRAGMA user_version`` so opening an
archive costs one pragma read when nothing is pending. Migrations are only ever appended.

The first migration creates the user's seed schema exactly (``spec/sqlite-schema.md``); it
uses ``IF NOT EXISTS`` so a ``qex.db`` made by hand from that document is adopted as it is.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import ArchiveError, SchemaTooNew
from .paths import ForeignFile, artifact_path, data_path
from .writer import Writer

# A migration changes the database; it may return stored files to remove once it is committed.
Migration = Callable[[sqlite3.Connection], "Iterable[str] | None"]


def m001_seed_schema(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS runs (
            run_id TEXT PRIMARY KEY,
            experiment_name TEXT NOT NULL,
            params TEXT NOT NULL,
            backend_name TEXT NOT NULL,
            timestamp REAL NOT NULL,
            density_matrix_path TEXT NOT NULL,
            metadata TEXT
        )"""
    )
    conn.execute(
        """CREATE TABLE IF NOT EXISTS artifacts (
            artifact_id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            artifact_name TEXT NOT NULL,
            artifact_path TEXT NOT NULL,
            artifact_type TEXT NOT NULL,
            FOREIGN KEY (run_id) REFERENCES runs(run_id)
        )"""
    )
    conn.execute("CREATE INDEX IF NOT EXISTS idx_runs_experiment_name ON runs(experiment_name)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_runs_timestamp ON runs(timestamp)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_artifacts_run_id ON artifacts(run_id)")


def m002_file_checksums(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE qex_files (
            path TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX idx_qex_files_run_id ON qex_files(run_id)")


def m003_import_provenance(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE qex_imports (
            run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
            bundle_id TEXT NOT NULL,
            bundle_sha256 TEXT NOT NULL,
            source_name TEXT NOT NULL,
            imported_at REAL NOT NULL
        )"""
    )


def m004_file_origin(conn: sqlite3.Connection) -> None:
    # NULL: written here. Otherwise the ID of the bundle the file was imported from, so that
    # foreign content (an HTML page from a stranger) is never opened by qex without consent.
    conn.execute("ALTER TABLE qex_files ADD COLUMN origin TEXT")


def m005_lookup_indexes(conn: sqlite3.Connection) -> None:
    # qex's own indexes beside the seed's three (which stay as the user's document has them):
    # the newest runs of an experiment without sorting them all, and backend names for
    # filters and shell completion without a scan.
    conn.execute(
        "CREATE INDEX qex_runs_experiment_time ON runs(experiment_name, timestamp, run_id)"
    )
    conn.execute("CREATE INDEX qex_runs_backend ON runs(backend_name)")


def m006_tags_and_notes(conn: sqlite3.Connection) -> None:
    # Marks added after the fact, in tables of qex's own: the seed's runs and artifacts stay
    # exactly as the user's document has them.
    conn.execute(
        """CREATE TABLE qex_tags (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            key TEXT NOT NULL,
            value TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, key)
        )"""
    )
    conn.execute("CREATE INDEX qex_tags_key_value ON qex_tags(key, value)")
    conn.execute(
        """CREATE TABLE qex_notes (
            note_id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            created REAL NOT NULL,
            text TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX qex_notes_run_id ON qex_notes(run_id)")
    # the note the sender gave the bundle (pack --note), kept with each imported run
    conn.execute("ALTER TABLE qex_imports ADD COLUMN bundle_note TEXT")


def m007_remotes(conn: sqlite3.Connection) -> None:
    # where bundles are pushed and pulled; options without secrets (see remotes.py)
    conn.execute(
        """CREATE TABLE qex_remotes (
            name TEXT PRIMARY KEY,
            url TEXT NOT NULL,
            storage_options TEXT NOT NULL DEFAULT '{}'
        )"""
    )


def m008_path_indexes(conn: sqlite3.Connection) -> None:
    # "Does any row refer to this file?" (asked before an import moves a file into place and
    # before rm deletes one) as an index look-up: without them, importing into an archive of
    # a million runs scanned the runs table once per file.
    conn.execute("CREATE INDEX qex_runs_rho_path ON runs(density_matrix_path)")
    conn.execute("CREATE INDEX qex_artifacts_path ON artifacts(artifact_path)")


def m009_seed_artifact_names(conn: sqlite3.Connection) -> list[str]:
    """Artifacts that an earlier ``render`` gave a second name (``{run_id}_bloch-1a2b3c4d.html``)
    get the seed's name back (``{run_id}_bloch.html``): the file gets the new name as a second
    link, the rows follow, and the old name goes once this is committed. A crash in between
    leaves a second link that no row names, which ``gc`` removes."""
    root = _archive_root(conn)
    if root is None:
        return []  # an in-memory database: no files
    hex8 = "[0-9a-f]" * 8
    rows = conn.execute(
        "SELECT run_id, artifact_name, artifact_path FROM artifacts WHERE artifact_path GLOB ?",
        (f"artifacts/*-{hex8}.*",),
    ).fetchall()
    gone: list[str] = []
    for run_id, name, old in rows:
        extension = old.rpartition(".")[2]
        new = artifact_path(run_id, name, extension)
        if new == old or not _is_seed_candidate(old, run_id, name):
            continue
        taken = conn.execute(
            "SELECT 1 FROM artifacts WHERE artifact_path = ? UNION "
            "SELECT 1 FROM runs WHERE density_matrix_path = ? UNION "
            "SELECT 1 FROM qex_files WHERE path = ?",
            (new, new, new),
        ).fetchone()
        if taken:
            continue
        try:
            target = data_path(root, new)
            if os.path.lexists(target):
                if not os.path.samefile(data_path(root, old), target):
                    continue  # somebody's file: left alone
            else:
                os.link(data_path(root, old), target)
        except (OSError, ForeignFile):
            continue  # the old file is missing or not the archive's own: check reports it
        conn.execute(
            "UPDATE artifacts SET artifact_path = ? WHERE run_id = ? AND artifact_path = ?",
            (new, run_id, old),
        )
        conn.execute("UPDATE qex_files SET path = ? WHERE path = ?", (new, old))
        gone.append(old)
    return gone


def m010_bundle_merges(conn: sqlite3.Connection) -> None:
    # the bundles whose tags and notes were merged into a run already here: a bundle's marks
    # reach a run once, so what is removed or edited here since stays so when it comes again
    conn.execute(
        """CREATE TABLE IF NOT EXISTS qex_bundle_merges (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            bundle_id TEXT NOT NULL,
            PRIMARY KEY (run_id, bundle_id)
        )"""
    )


def _is_seed_candidate(path: str, run_id: str, name: str) -> bool:
    """``artifacts/{run_id}_{name}-{8 hex}.{ext}``: the second name an earlier render gave."""
    stem = path.removeprefix(f"artifacts/{run_id}_{name}-").rpartition(".")[0]
    return len(stem) == 8 and all(ch in "0123456789abcdef" for ch in stem)


def _archive_root(conn: sqlite3.Connection) -> Path | None:
    for _, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file).parent
    return None


MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("m001_seed_schema", m001_seed_schema),
    ("m002_file_checksums", m002_file_checksums),
    ("m003_import_provenance", m003_import_provenance),
    ("m004_file_origin", m004_file_origin),
    ("m005_lookup_indexes", m005_lookup_indexes),
    ("m006_tags_and_notes", m006_tags_and_notes),
    ("m007_remotes", m007_remotes),
    ("m008_path_indexes", m008_path_indexes),
    ("m009_seed_artifact_names", m009_seed_artifact_names),
    ("m010_bundle_merges", m010_bundle_merges),
)

LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of migrations applied. ``PRAGMA user_version`` answers in one read when it is
    the latest; otherwise the migrations table counts too: a database restored from
    ``sqlite3 .dump`` has its tables and rows but a ``user_version`` of 0."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == LATEST_VERSION:
        return version
    try:
        (recorded,) = conn.execute("SELECT max(version) FROM qex_migrations").fetchone()
    except sqlite3.OperationalError:  # no such table: a new database, or one qex never opened
        return version
    return max(version, int(recorded or 0))


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Bring the database to :data:`LATEST_VERSION`; return the names of migrations applied."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION:
        return []
    applied: list[str] = []
    writer = Writer(conn, _archive_root(conn))
    with writer.unit("upgrade the archive's schema", faults=False):
        # Another process may have migrated while we waited for the write lock.
        version = schema_version(conn)
        _refuse_newer(version)
        conn.execute(
            """CREATE TABLE IF NOT EXISTS qex_migrations (
                version INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                applied_at REAL NOT NULL
            )"""
        )
        for number, (name, migration) in enumerate(MIGRATIONS[version:], start=version + 1):
            writer.remove_after_commit(migration(conn) or ())
            conn.execute(
                "INSERT INTO qex_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (number, name, time.time()),
            )
            applied.append(name)
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION}")
    return applied


def _refuse_newer(version: int) -> None:
    if version > LATEST_VERSION:
        from .. import __version__

        raise SchemaTooNew(
            f"this archive has schema version {version}, but qex-archive {__version__} "
            f"understands up to version {LATEST_VERSION}; upgrade with "
            "'pip install --upgrade qex-archive'"
        )


def refuse_stale(conn: sqlite3.Connection, root: Path) -> None:
    """Refuse a database opened read-only whose schema is not the latest: an older one cannot
    be upgraded there, a newer one is not understood."""
    version = schema_version(conn)
    if version < LATEST_VERSION:
        conn.close()
        raise ArchiveError(
            f"the archive at {root} was written by an older qex-archive and needs upgrading, "
            "which cannot be done while it is read-only; open it once where it can be written"
        )
    if version > LATEST_VERSION:
        conn.close()
        _refuse_newer(version)
