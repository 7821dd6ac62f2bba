"""The SQL of qex's tables of marks users add to runs: ``qex_tags`` and ``qex_notes``. Writers
run inside a transaction the caller holds (see :mod:`.writer`)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from .tables import _marks, _rows_in

# -- qex_tags and qex_notes ---------------------------------------------------------------

# "The run has the tag KEY (with the value VALUE)", the fragment query.py puts in a WHERE
# clause, in two forms that SQLite plans differently. Asked of each run, it suits a tag many
# runs carry when a few are wanted: "newest 50" stops after 50 matches. A tag few runs carry is
# better read from the tags index, the runs looked up after (the figures at a million runs are
# in benchmarks/README.md, "Figures behind the code's choices").
HAS_TAG = "EXISTS (SELECT 1 FROM qex_tags t WHERE t.run_id = runs.run_id AND t.key = ?)"
HAS_TAG_VALUE = (
    "EXISTS (SELECT 1 FROM qex_tags t WHERE t.run_id = runs.run_id AND t.key = ? AND t.value = ?)"
)
TAGGED = "runs.run_id IN (SELECT run_id FROM qex_tags WHERE key = ?)"
TAGGED_VALUE = "runs.run_id IN (SELECT run_id FROM qex_tags WHERE key = ? AND value = ?)"
TAG_INDEX_MAX = 50_000  # at most this many runs are ever read from the tags index


def rare_tags(
    conn: sqlite3.Connection, tags: Sequence[tuple[str, str | None]], wanted: int | None = None
) -> set[tuple[str, str | None]]:
    """The tag conditions (key, value or None) to read from the tags index when ``wanted``
    runs are asked for (``None``: all that match). Reading a tag's m runs from the index
    costs about m look-ups; asking each of the archive's n runs in time order costs about
    wanted * n / m until enough match. The index wins below m = sqrt(wanted * n) / 2 (the
    look-ups cost more than the questions), and for all matches up to
    :data:`TAG_INDEX_MAX`; each tag's runs are counted only that far."""
    if not tags:
        return set()
    (runs,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM runs").fetchone()  # about n
    cap = TAG_INDEX_MAX
    if wanted is not None:
        cap = min(cap, int(math.sqrt(wanted * runs) / 2) + 1)
    rare = set()
    for key, value in tags:
        condition, args = (
            ("key = ?", [key]) if value is None else ("key = ? AND value = ?", [key, value])
        )
        (count,) = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM qex_tags WHERE {condition} LIMIT ?)",
            [*args, cap],
        ).fetchone()
        if count < cap:
            rare.add((key, value))
    return rare


def tags_by_run(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
    sql = "SELECT run_id, key, value FROM qex_tags WHERE run_id IN ({ids}) ORDER BY key"
    for run_id, key, value in _rows_in(conn, sql, found):
        found[run_id][key] = value
    return found


def set_tags(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str]]) -> None:
    """``(run_id, key, value)``: each key set, replacing its value."""
    conn.executemany(
        "INSERT INTO qex_tags (run_id, key, value) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        rows,
    )


def remove_tags(conn: sqlite3.Connection, run_id: str, keys: Sequence[str]) -> int:
    cursor = conn.execute(
        f"DELETE FROM qex_tags WHERE run_id = ? AND key IN ({_marks(keys)})", (run_id, *keys)
    )
    return cursor.rowcount


def notes_by_run(
    conn: sqlite3.Connection, run_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    sql = (
        "SELECT run_id, created, text FROM qex_notes WHERE run_id IN ({ids}) "
        "ORDER BY created, note_id"
    )
    for run_id, created, text in _rows_in(conn, sql, found):
        found[run_id].append({"created": created, "text": text})
    return found


def add_notes(conn: sqlite3.Connection, rows: Iterable[tuple[str, float, str]]) -> None:
    """``(run_id, created, text)``."""
    conn.executemany("INSERT INTO qex_notes (run_id, created, text) VALUES (?, ?, ?)", rows)


def replace_last_note(conn: sqlite3.Connection, run_id: str, created: float, text: str) -> bool:
    row = conn.execute(
        "SELECT note_id FROM qex_notes WHERE run_id = ? ORDER BY created DESC, note_id DESC "
        "LIMIT 1",
        (run_id,),
    ).fetchone()
    if row is None:
        return False
    conn.execute(
        "UPDATE qex_notes SET created = ?, text = ? WHERE note_id = ?", (created, text, row[0])
    )
    return True


def note_counts(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, int]:
    """How many notes each of the runs has (0 for none), by run ID."""
    found = dict.fromkeys(run_ids, 0)
    sql = "SELECT run_id, count(*) FROM qex_notes WHERE run_id IN ({ids}) GROUP BY run_id"
    for run_id, count in _rows_in(conn, sql, found):
        found[run_id] = count
    return found


def tag_keys(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> list[str]:
    """The tag keys the runs matching a WHERE clause carry, sorted (each key once)."""
    sql = (
        f"SELECT DISTINCT key FROM qex_tags WHERE run_id IN (SELECT run_id FROM runs{where}) "
        "ORDER BY key"
    )
    return [key for (key,) in conn.execute(sql, list(args))]
