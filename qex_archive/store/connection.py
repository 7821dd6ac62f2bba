"""The SQLite connection: pragmas and write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

BUSY_TIMEOUT_SECONDS = 60.0


def connect(db_path: Path) -> sqlite3.Connection:
    """Open ``db_path`` in WAL mode with foreign keys on and a generous busy timeout.

    ``isolation_level=None`` hands transaction control to us: every write happens inside
    :func:`write_transaction`, i.e. ``BEGIN IMMEDIATE``, so concurrent writers queue on the
    busy timeout instead of failing half-way with "database is locked".
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
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full) may leave the transaction open: end it, changing nothing.
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One consistent snapshot for several reads."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
