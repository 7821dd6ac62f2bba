"""The served archive: opened read-only, a connection per worker thread (SQLite connections
belong to the thread that opened them), each request's queries bounded in time.

Nothing here writes: the database is opened the way a read-only archive is
(:func:`qex_archive.store.connection.open_database` with ``read_only``), and the
:class:`~qex_archive.archive.Archive` around it refuses every change. Each request reads in
one read transaction, begun when it starts: a run another process commits is there on the
next request, and a reader never blocks a writer (WAL).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..archive import Archive
from ..errors import ArchiveNotFound
from ..opening import init_command
from ..store.connection import open_database, read_transaction
from ..store.paths import DB_NAME, resolve_data_dir

READ_ONLY_REASON = "served by 'qex-archive serve', which only reads"
TIME_LIMIT_SECONDS = 1.0  # each request's queries, as datasette's default
PROGRESS_STEPS = 5_000  # SQLite virtual-machine steps between two looks at the clock


class ServedArchive:
    """One archive as the server reads it: :meth:`reading` gives the calling thread's
    read-only :class:`Archive` inside a read transaction and a time limit."""

    def __init__(self, root: Path, *, time_limit: float = TIME_LIMIT_SECONDS) -> None:
        self.root = root
        self.time_limit = time_limit
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Archive] = []
        self._archive()  # a missing or unusable archive is refused now, not at the first page

    @classmethod
    def at(cls, path: object, *, time_limit: float = TIME_LIMIT_SECONDS) -> ServedArchive:
        """The archive at ``path`` (an :class:`Archive`, or a directory as ``--data-dir``)."""
        if isinstance(path, Archive):
            return cls(path.root, time_limit=time_limit)
        given = None if path is None else str(path)
        root = resolve_data_dir(given)
        if not (root / DB_NAME).is_file():
            raise ArchiveNotFound(
                f"no archive at {root}; create one with '{init_command(given)}' "
                "or point --data-dir / $QEX_DATA at an existing one"
            )
        return cls(root, time_limit=time_limit)

    def _archive(self) -> Archive:
        archive: Archive | None = getattr(self._local, "archive", None)
        if archive is None:
            conn = open_database(self.root / DB_NAME, read_only=True)
            archive = Archive(self.root, conn, read_only=READ_ONLY_REASON)
            self._local.deadline = math.inf
            local = self._local

            def over_time() -> int:
                if time.monotonic() > local.deadline:
                    local.stopped = True
                    return 1  # SQLite stops the statement: "interrupted"
                return 0

            conn.set_progress_handler(over_time, PROGRESS_STEPS)
            self._local.archive = archive
            with self._lock:
                self._opened.append(archive)
        return archive

    @contextmanager
    def reading(self) -> Iterator[Archive]:
        """The calling thread's archive for one request: one read transaction, and its
        queries stopped past the time limit (then :class:`TimeoutError`, its one line)."""
        archive = self._archive()
        local = self._local
        local.stopped = False
        with read_transaction(archive.conn):
            local.deadline = time.monotonic() + self.time_limit  # BEGIN itself is never stopped
            try:
                yield archive
            except Exception:
                if local.stopped:
                    raise TimeoutError(
                        f"the query took longer than {self.time_limit:g} s and was stopped; "
                        "narrow the filters (an experiment, a time range) and reload"
                    ) from None
                raise
            finally:
                local.deadline = math.inf  # before the transaction ends: never stop a ROLLBACK

    def close(self) -> None:
        """Forget the connections (each closes when its thread's last reference goes)."""
        with self._lock:
            self._opened.clear()
