"""The SQLite connection: pragmas, read-only opening and read transactions (writes go through
:mod:`qex_archive.store.writer`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ArchiveError

BUSY_TIMEOUT_SECONDS = 60.0
Connection = sqlite3.Connection  # for the modules outside the store, which never import sqlite3


def connect(db_path: Path) -> sqlite3.Connection:
    """Open ``db_path`` in WAL mode with foreign keys on and a generous busy timeout.

    ``isolation_level=None`` hands transaction control to us: every write happens inside
    a unit of :class:`~qex_archive.store.writer.Writer`, i.e. ``BEGIN IMMEDIATE``, so
    concurrent writers queue on the busy timeout instead of failing half-way with "database is
    locked".
    """
    conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL never corrupts and never loses a commit to a killed process.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def connect_read_only(db_path: Path) -> sqlite3.Connection:
    """Open ``db_path`` for reading only, for an archive on a read-only mount or without write
    permission. A WAL database needs its ``-shm`` file, which a reader cannot create there;
    then the file is opened as immutable (nobody can be writing to it either)."""
    uri = db_path.resolve().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            conn.execute("PRAGMA user_version").fetchone()
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            continue
        conn.isolation_level = None
        return conn
    raise sqlite3.DatabaseError("cannot open the database read-only")


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One consistent snapshot for several reads (inside a transaction already open on
    ``conn``, that transaction's)."""
    nested = conn.in_transaction
    if nested:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def open_database(db_path: Path, *, read_only: bool) -> sqlite3.Connection:
    """The archive's database, its schema brought up to date (``read_only``: opened for
    reading, and refused when it needs upgrading); one :class:`ArchiveError` line when the
    file is not a usable SQLite database."""
    from .migrations import migrate, refuse_stale

    try:
        if read_only:
            conn = connect_read_only(db_path)
            refuse_stale(conn, db_path.parent)
        else:
            conn = connect(db_path)
            migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"{db_path} is not a usable SQLite database ({exc})") from None
    return conn


def peek(db_path: Path, lookup: Callable[[sqlite3.Connection], list[str]]) -> list[str]:
    """``lookup`` on a database opened read-only for at most a second, or nothing: for shell
    completion, which must never fail or wait."""
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        try:
            return lookup(conn)
        finally:
            conn.close()
    except (sqlite3.Error, OSError, ValueError):
        return []
