"""The SQLite connection: pragmas and write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
