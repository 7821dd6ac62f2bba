"""A :class:`~qex_archive.store.query.RunFilter` run against the tables: the rows it selects,
a batch at a time, and its counts and IDs.

A row whose JSON column is not JSON (written by another tool) makes SQLite's ``json_extract``
stop the whole query; the query is then asked again in a form under which such rows match no
condition, and the runs already given are not given twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from . import tables
from .query import RunFilter, order_by
from .tables import RunRow

MAX_SQL_INTEGER = 2**63 - 1


def select_rows(
    conn: sqlite3.Connection,
    selection: RunFilter,
    *,
    sort: str | None,
    reverse: bool,
    limit: int | None,
    offset: int,
    batch: int,
) -> Iterator[list[RunRow]]:
    """The rows of the runs ``selection`` matches in the order asked for, ``batch`` at a time,
    read as they are asked for. The sort key is checked before any query."""
    order_by(sort, reverse)
    # SQLite integers stop at 2**63 - 1; nobody has that many runs
    paging = [
        -1 if limit is None or limit > MAX_SQL_INTEGER else limit,
        min(offset, MAX_SQL_INTEGER),
    ]
    wanted = None if limit is None else limit + offset
    rare = tables.rare_tags(conn, selection.tags, wanted)
    return _batches(conn, selection, rare, sort, reverse, paging, batch)


def _batches(
    conn: sqlite3.Connection,
    selection: RunFilter,
    rare_tags: set[tuple[str, str | None]],
    sort: str | None,
    reverse: bool,
    paging: list[int],
    batch: int,
) -> Iterator[list[RunRow]]:
    given = 0
    for damaged_json in (False, True):
        where, args = selection.sql(damaged_json=damaged_json, rare_tags=rare_tags)
        order = order_by(sort, reverse, damaged_json=damaged_json)
        skip = given
        try:
            for rows in tables.select_runs(conn, where, order, [*args, *paging], batch):
                # the runs before a damaged row come again in the same order: skip them
                dropped = min(skip, len(rows))
                skip -= dropped
                if dropped < len(rows):
                    given += len(rows) - dropped
                    yield rows[dropped:]
            return
        except sqlite3.OperationalError as exc:
            if damaged_json or "malformed JSON" not in str(exc):
                raise


def filtered(
    conn: sqlite3.Connection,
    selection: RunFilter,
    query: Callable[[str, list[Any]], Any],
    wanted: int | None = None,
) -> Any:
    """``query(where, args)`` for the selection (``wanted``: how many of the matching runs the
    query reads, ``None`` for all)."""
    rare = tables.rare_tags(conn, selection.tags, wanted)
    where, args = selection.sql(rare_tags=rare)
    try:
        return query(where, args)
    except sqlite3.OperationalError as exc:
        if "malformed JSON" not in str(exc):
            raise
    where, args = selection.sql(damaged_json=True, rare_tags=rare)
    return query(where, args)


def run_ids(conn: sqlite3.Connection, selection: RunFilter) -> list[str]:
    """IDs of the runs matching ``selection``, sorted (no run is read: for a million)."""
    ids: list[str] = filtered(
        conn, selection, lambda where, args: tables.select_run_ids(conn, where, args)
    )
    return ids


def count(conn: sqlite3.Connection, selection: RunFilter) -> int:
    total: int = filtered(conn, selection, lambda where, args: tables.count_runs(conn, where, args))
    return total


def unknown_keys(conn: sqlite3.Connection, selection: RunFilter) -> list[str]:
    """Hints for a selection that matched nothing: each parameter it names that no run of
    the rest of the selection has, with the keys those runs do have."""
    hints = []
    base_where, base_args = selection.base().sql(damaged_json=True)
    for key in selection.keys("params"):
        if not tables.any_run_has_param(conn, base_where, base_args, key):
            seen = tables.param_keys(conn, base_where, base_args, limit=1000)
            shown = ", ".join(seen[:20]) + (" ..." if len(seen) > 20 else "")
            hints.append(f"no run has param {key!r}; keys seen: {shown or 'none'}")
    return hints
