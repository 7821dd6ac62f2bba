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

from . import annotation_tables, tables
from .query import METADATA_ALIASES, Condition, RunFilter, json_path, order_by, path_sql
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
    rare = annotation_tables.rare_tags(conn, selection.tags, wanted)
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
    rare = annotation_tables.rare_tags(conn, selection.tags, wanted)
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
    """Hints for a selection that matched nothing: each parameter (or metadata path) it names
    that no run of the rest of the selection has, with the keys (paths) those runs do have
    where it stops: the params' keys, or under the deepest part of a dotted path that some
    run has (``theta.valu``: ``theta.unit, theta.value``)."""
    hints = []
    base_where, base_args = selection.base().sql(damaged_json=True)
    for column, noun, seen_noun in (("params", "param", "keys"), ("metadata", "metadata", "paths")):
        for key in selection.keys(column):
            condition = Condition(key, "=", None, column)
            if _any_run_has(conn, base_where, base_args, condition):
                continue
            if column == "params" and condition.nested_path() is None:
                seen = tables.param_keys(conn, base_where, base_args, limit=1000)
            else:
                seen = _keys_seen(conn, base_where, base_args, column, key.split("."))
            shown = ", ".join(seen[:20]) + (" ..." if len(seen) > 20 else "") or "none"
            if column == "metadata" and "." not in key:
                shown += f" (or the shortcuts {', '.join(METADATA_ALIASES)})"
            hints.append(f"no run has {noun} {key!r}; {seen_noun} seen: {shown}")
    return hints


def _safe(column: str) -> str:
    return f"(CASE WHEN json_valid({column}) THEN {column} END)"


def _and(where: str) -> str:
    return f"{where} AND " if where else " WHERE "


def _any_run_has(
    conn: sqlite3.Connection, where: str, args: list[Any], condition: Condition
) -> bool:
    """Whether a run matching ``where`` has the key or path ``condition`` reads."""
    column = _safe(condition.column)
    path, path_args = path_sql(condition, column)
    sql = f"SELECT 1 FROM runs{_and(where)}json_type({column}, {path}) IS NOT NULL LIMIT 1"
    return conn.execute(sql, [*args, *path_args]).fetchone() is not None


def _keys_seen(
    conn: sqlite3.Connection, where: str, args: list[Any], column: str, parts: list[str]
) -> list[str]:
    """The dotted paths of the keys found (in up to 1000 runs) under the longest beginning of
    ``parts`` that some run matching ``where`` has as an object (the top when none does)."""
    safe = _safe(column)
    is_object = f"json_type({safe}, ?) = 'object'"
    depth = next(
        (
            depth
            for depth in range(len(parts) - 1, 0, -1)
            if conn.execute(
                f"SELECT 1 FROM runs{_and(where)}{is_object} LIMIT 1",
                [*args, json_path(parts[:depth])],
            ).fetchone()
        ),
        0,
    )
    prefix = json_path(parts[:depth])
    sql = (
        f"SELECT DISTINCT j.key FROM (SELECT {column} AS doc FROM runs{_and(where)}{is_object} "
        "LIMIT 1000) AS r, json_each(CASE WHEN json_valid(r.doc) THEN r.doc END, ?) AS j "
        "ORDER BY j.key"
    )
    found = conn.execute(sql, [*args, prefix, prefix])
    return [".".join([*parts[:depth], str(key)]) for (key,) in found]
