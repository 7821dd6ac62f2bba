"""Runs that are in no archive yet (a bundle's, before they are imported) asked a
:class:`~qex_archive.store.query.RunFilter`, with the answer an archive would give.

Their rows (the ``runs`` rows and tags an import would insert) go into a private in-memory
database with the archive's own tables, made by the archive's migrations, and the filter runs
there through :func:`~qex_archive.store.selecting.run_ids`: the same SQL, so a filter means
exactly what it means for ``runs`` (JSON conditions, tags, validity, time), with nothing written
anywhere else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from . import annotation_tables, selecting, tables
from .migrations import migrate
from .query import RunFilter
from .tables import RunRow
from .writer import Writer


class ScratchSelection:
    """A filter asked of runs given a batch at a time (each batch replaces the one before)."""

    def __init__(self, selection: RunFilter) -> None:
        self.selection = selection
        self._conn = sqlite3.connect(":memory:", isolation_level=None)
        migrate(self._conn)
        self._writer = Writer(self._conn)

    def matching(self, runs: Sequence[RunRow], tags: Iterable[tuple[str, str, str]]) -> set[str]:
        """IDs of those ``runs`` (with their ``(run_id, key, value)`` tags) the filter selects."""
        with self._writer.unit("select the bundle's runs", faults=False):
            self._conn.execute("DELETE FROM qex_tags")
            self._conn.execute("DELETE FROM runs")
            tables.insert_runs(self._conn, runs)
            annotation_tables.set_tags(self._conn, tags)
        return set(selecting.run_ids(self._conn, self.selection))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ScratchSelection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
