"""The SQL of the run tables: ``runs`` and ``artifacts`` (the user's seed schema) and qex's own
``qex_files`` (size and SHA-256 of every stored file, and the bundle it came from) and
``qex_imports`` (where an imported run came from).

Every statement that reads or writes these tables lives here; the archive, ``check``, pack and
import call these functions. Writers run inside a transaction the caller holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# the seed's columns of ``runs``, in the order every query reads them
RUN_COLUMNS = (
    "run_id",
    "experiment_name",
    "params",
    "backend_name",
    "timestamp",
    "density_matrix_path",
    "metadata",
)
RunRow = tuple[str, str, str, str, float, str, "str | None"]

SELECT_RUNS = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit

ArtifactRow = tuple[str, str, str, str]  # run_id, name, path, media type
FileRow = tuple[str, str, int, str, "str | None"]  # path, run_id, size, sha256, origin
ImportRow = tuple[str, str, str, str, float, "str | None"]  # run, bundle, sha256, file, when, note


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


def _rows_in(conn: sqlite3.Connection, sql: str, ids: Iterable[str]) -> Iterator[Any]:
    """The rows of ``sql`` for ``ids``, where each ``{ids}`` in ``sql`` stands for an
    ``IN (...)`` list; asked 500 IDs at a time (order holds within each batch only)."""
    for chunk in _chunks(list(ids)):
        args = [*chunk] * sql.count("{ids}")
        yield from conn.execute(sql.replace("{ids}", _marks(chunk)), args)


# -- runs -----------------------------------------------------------------------------------


def run_by_id(conn: sqlite3.Connection, run_id: str) -> RunRow | None:
    row: RunRow | None = conn.execute(f"{SELECT_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
    return row


def runs_with_prefix(conn: sqlite3.Connection, prefix: str, limit: int) -> list[RunRow]:
    """Runs whose ID starts with ``prefix`` (an index range scan, not LIKE)."""
    upper = _successor(prefix)
    if upper is None:
        sql, args = f"{SELECT_RUNS} WHERE run_id >= ?", [prefix]
    else:
        sql, args = f"{SELECT_RUNS} WHERE run_id >= ? AND run_id < ?", [prefix, upper]
    rows = conn.execute(
        f"{sql} AND substr(run_id, 1, ?) = ? ORDER BY run_id LIMIT ?",
        [*args, len(prefix), prefix, limit],
    ).fetchall()
    return rows


def run_ids_with_prefix(conn: sqlite3.Connection, prefix: str, limit: int) -> list[str]:
    upper = _successor(prefix)
    rows = conn.execute(
        "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT ?",
        (prefix, upper if upper is not None else "\U0010ffff", limit),
    )
    return [run_id for (run_id,) in rows]


def names_with_prefix(conn: sqlite3.Connection, column: str, prefix: str, limit: int) -> list[str]:
    """Distinct experiment or backend names starting with ``prefix``: one indexed lookup per
    name (a skip scan), however many runs share each."""
    if column not in ("experiment_name", "backend_name"):
        raise ValueError(column)
    upper = _successor(prefix) or "\U0010ffff"
    first = f"SELECT min({column}) FROM runs WHERE {column} >= ? AND {column} < ?"
    after = f"SELECT min({column}) FROM runs WHERE {column} > ? AND {column} < ?"
    names: list[str] = []
    (name,) = conn.execute(first, (prefix, upper)).fetchone()
    while name is not None and len(names) < limit:
        names.append(name)
        (name,) = conn.execute(after, (name, upper)).fetchone()
    return names


def _successor(prefix: str) -> str | None:
    """The smallest text greater than every text starting with ``prefix`` (SQLite compares
    UTF-8 bytes, i.e. code points); ``None`` when there is none."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last == 0xD800:  # surrogates are not text
            last = 0xE000
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def select_runs(
    conn: sqlite3.Connection, where: str, order: str, args: Sequence[Any], batch: int = 1000
) -> Iterator[list[RunRow]]:
    """Runs matching a WHERE clause, in an ORDER BY (both from :mod:`qex_archive.store.query`),
    ``batch`` rows at a time; ``args`` ends with the LIMIT and OFFSET values."""
    cursor = conn.execute(f"{SELECT_RUNS}{where}{order} LIMIT ? OFFSET ?", list(args))
    while rows := cursor.fetchmany(batch):
        yield rows


def select_run_ids(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> list[str]:
    """IDs of the runs matching a WHERE clause (from :mod:`qex_archive.store.query`), sorted."""
    return [
        run_id
        for (run_id,) in conn.execute(f"SELECT run_id FROM runs{where} ORDER BY run_id", list(args))
    ]


def runs_by_ids(conn: sqlite3.Connection, run_ids: Sequence[str]) -> list[RunRow]:
    """The runs of these IDs, in the order given (IDs not present are left out)."""
    found = {
        row[0]: row for row in _rows_in(conn, f"{SELECT_RUNS} WHERE run_id IN ({{ids}})", run_ids)
    }
    return [found[run_id] for run_id in run_ids if run_id in found]


def count_runs(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> int:
    total: int = conn.execute(f"SELECT count(*) FROM runs{where}", list(args)).fetchone()[0]
    return total


def any_run_has_param(conn: sqlite3.Connection, where: str, args: Sequence[Any], key: str) -> bool:
    joiner = " AND " if where else " WHERE "
    path = '$."' + key + '"'
    sql = (
        f"SELECT 1 FROM runs{where}{joiner}json_type(CASE WHEN json_valid(params) THEN params "
        "END, ?) IS NOT NULL LIMIT 1"
    )
    return conn.execute(sql, [*args, path]).fetchone() is not None


def param_keys(conn: sqlite3.Connection, where: str, args: Sequence[Any], limit: int) -> list[str]:
    """The parameter names used by up to ``limit`` of the runs matching ``where``."""
    sql = (
        "SELECT DISTINCT j.key FROM (SELECT params FROM runs"
        f"{where} LIMIT ?) AS r, json_each(CASE WHEN json_valid(r.params) THEN r.params END) AS j "
        "ORDER BY j.key"
    )
    return [key for (key,) in conn.execute(sql, [*args, limit])]


_SUMMARY_METADATA = "(CASE WHEN json_valid(metadata) THEN metadata END)"
SELECT_SUMMARY = (
    "SELECT run_id, experiment_name, backend_name, timestamp, params, "
    + ", ".join(
        f"json_extract({_SUMMARY_METADATA}, '$.{path}')"
        for path in (
            "validation.purity",
            "validation.von_neumann_entropy_bits",
            "validation.is_valid",
            "validation.trace",
            "state.dims",
        )
    )
    + " FROM runs"
)


def summary_rows(conn: sqlite3.Connection, run_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """``(run_id, experiment, backend, timestamp, params, purity, entropy, is_valid, trace,
    dims)`` of the runs: the validation summary read by SQLite, not parsed in Python."""
    return list(_rows_in(conn, f"{SELECT_SUMMARY} WHERE run_id IN ({{ids}})", run_ids))


def iter_summary_rows(
    conn: sqlite3.Connection, where: str, order: str, args: Sequence[Any]
) -> Iterator[tuple[Any, ...]]:
    """The same rows for a WHERE clause, streamed (a million runs in bounded memory)."""
    cursor = conn.execute(f"{SELECT_SUMMARY}{where}{order}", list(args))
    while rows := cursor.fetchmany(1000):
        yield from rows


def iter_params(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> Iterator[Any]:
    """The ``params`` text of the matching runs, streamed."""
    cursor = conn.execute(f"SELECT params FROM runs{where}", list(args))
    while rows := cursor.fetchmany(1000):
        for (params,) in rows:
            yield params


def experiment_summary(conn: sqlite3.Connection) -> list[tuple[str, int, Any, Any]]:
    """``(experiment, run count, first timestamp, last timestamp)`` of every experiment."""
    rows: list[tuple[str, int, Any, Any]] = conn.execute(
        "SELECT experiment_name, count(*), min(timestamp), max(timestamp) FROM runs "
        "GROUP BY experiment_name ORDER BY experiment_name"
    ).fetchall()
    return rows


def insert_runs(conn: sqlite3.Connection, rows: Iterable[RunRow]) -> None:
    conn.executemany(
        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
    )


def run_rows_for_check(conn: sqlite3.Connection) -> Iterator[list[tuple[Any, ...]]]:
    """``(run_id, params, metadata, timestamp, density_matrix_path)`` of every run, in
    batches of 1,000."""
    cursor = conn.execute(
        "SELECT run_id, params, metadata, timestamp, density_matrix_path FROM runs ORDER BY run_id"
    )
    while rows := cursor.fetchmany(1000):
        yield rows


def density_matrix_paths(conn: sqlite3.Connection) -> set[str]:
    return {path for (path,) in conn.execute("SELECT density_matrix_path FROM runs")}


def metadata_by_run(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, Any]:
    """The ``metadata`` text (or NULL) of each of the runs, by run ID (absent IDs left out)."""
    sql = "SELECT run_id, metadata FROM runs WHERE run_id IN ({ids})"
    return dict(_rows_in(conn, sql, run_ids))


def iter_metadata(conn: sqlite3.Connection, where: str, args: Sequence[Any]) -> Iterator[Any]:
    """The ``metadata`` text of the runs matching a WHERE clause, streamed."""
    cursor = conn.execute(f"SELECT metadata FROM runs{where}", list(args))
    while rows := cursor.fetchmany(1000):
        for (metadata,) in rows:
            yield metadata


# -- artifacts ------------------------------------------------------------------------------


def insert_artifacts(conn: sqlite3.Connection, rows: Iterable[ArtifactRow]) -> None:
    conn.executemany(
        "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
        "VALUES (?, ?, ?, ?)",
        rows,
    )


def artifact_rows(
    conn: sqlite3.Connection, run_ids: Sequence[str]
) -> list[tuple[str, str, str, str, str | None]]:
    """``(run_id, name, path, media type, origin)`` of the runs' artifacts, in insert order."""
    sql = (
        "SELECT a.run_id, a.artifact_name, a.artifact_path, a.artifact_type, f.origin "
        "FROM artifacts a LEFT JOIN qex_files f ON f.path = a.artifact_path "
        "WHERE a.run_id IN ({ids}) ORDER BY a.artifact_id"
    )
    return list(_rows_in(conn, sql, run_ids))


def delete_artifacts(conn: sqlite3.Connection, run_id: str, names: Sequence[str]) -> list[str]:
    """Remove the named artifacts of a run and their checksum rows; returns their paths."""
    marks = _marks(names)
    paths = [
        path
        for (path,) in conn.execute(
            f"SELECT artifact_path FROM artifacts WHERE run_id = ? AND artifact_name IN ({marks})",
            (run_id, *names),
        )
    ]
    conn.execute(
        f"DELETE FROM artifacts WHERE run_id = ? AND artifact_name IN ({marks})",
        (run_id, *names),
    )
    for path in paths:
        conn.execute("DELETE FROM qex_files WHERE path = ? AND run_id = ?", (path, run_id))
    return paths


# -- qex_files ------------------------------------------------------------------------------


def insert_files(conn: sqlite3.Connection, rows: Iterable[FileRow]) -> None:
    conn.executemany(
        "INSERT INTO qex_files (path, run_id, size, sha256, origin) VALUES (?, ?, ?, ?, ?)", rows
    )


def file_checksums(
    conn: sqlite3.Connection, run_ids: Sequence[str] | None = None
) -> dict[str, tuple[int, str]]:
    """Size and SHA-256 recorded for each stored file (of the given runs, else of all)."""
    sql = "SELECT path, size, sha256 FROM qex_files"
    if run_ids is None:
        return {path: (size, sha) for path, size, sha in conn.execute(sql)}
    rows = _rows_in(conn, sql + " WHERE run_id IN ({ids})", run_ids)
    return {path: (size, sha) for path, size, sha in rows}


def file_checksum(conn: sqlite3.Connection, path: str) -> tuple[int, str] | None:
    """Size and SHA-256 recorded for one stored file."""
    row = conn.execute("SELECT size, sha256 FROM qex_files WHERE path = ?", (path,)).fetchone()
    return None if row is None else (row[0], row[1])


def rho_checksum(conn: sqlite3.Connection, run_id: str, rho_path: str) -> str | None:
    row = conn.execute(
        "SELECT sha256 FROM qex_files WHERE run_id = ? AND path = ?", (run_id, rho_path)
    ).fetchone()
    return None if row is None else str(row[0])


# -- every table at once ----------------------------------------------------------------------


def references(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every ``(path, run_id)`` the tables refer to, one entry per run and path."""
    rows = conn.execute(
        "SELECT density_matrix_path, run_id FROM runs "
        "UNION SELECT artifact_path, run_id FROM artifacts "
        "UNION SELECT path, run_id FROM qex_files"
    ).fetchall()
    return rows


def paths_of_run(conn: sqlite3.Connection, run_id: str) -> set[str]:
    paths: set[str] = set()
    for sql in (
        "SELECT density_matrix_path FROM runs WHERE run_id = ?",
        "SELECT artifact_path FROM artifacts WHERE run_id = ?",
        "SELECT path FROM qex_files WHERE run_id = ?",
    ):
        paths.update(path for (path,) in conn.execute(sql, (run_id,)))
    return paths


def referenced_among(conn: sqlite3.Connection, paths: Iterable[str]) -> set[str]:
    """Which of ``paths`` some row still refers to (three index look-ups per batch)."""
    sql = (
        "SELECT density_matrix_path FROM runs WHERE density_matrix_path IN ({ids}) "
        "UNION SELECT artifact_path FROM artifacts WHERE artifact_path IN ({ids}) "
        "UNION SELECT path FROM qex_files WHERE path IN ({ids})"
    )
    return {path for (path,) in _rows_in(conn, sql, paths)}


def data_version(conn: sqlite3.Connection) -> int:
    """A number that changes when another connection commits to the database."""
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    return int(version)


def delete_run(conn: sqlite3.Connection, run_id: str) -> None:
    for table in (
        "qex_tags",
        "qex_notes",
        "qex_bundle_merges",
        "qex_imports",
        "qex_files",
        "artifacts",
        "runs",
    ):
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))


# -- qex_imports ----------------------------------------------------------------------------


def insert_imports(conn: sqlite3.Connection, rows: Iterable[ImportRow]) -> None:
    conn.executemany(
        "INSERT INTO qex_imports (run_id, bundle_id, bundle_sha256, source_name, imported_at, "
        "bundle_note) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def provenance(conn: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Where each imported run among ``run_ids`` came from; runs recorded here are absent."""
    keys = ("bundle_id", "bundle_sha256", "source_name", "imported_at", "bundle_note")
    rows = _rows_in(
        conn,
        "SELECT run_id, bundle_id, bundle_sha256, source_name, imported_at, bundle_note "
        "FROM qex_imports WHERE run_id IN ({ids})",
        run_ids,
    )
    return {run_id: dict(zip(keys, values, strict=True)) for run_id, *values in rows}


def bundle_met(conn: sqlite3.Connection, run_ids: Sequence[str], bundle_id: str) -> set[str]:
    """Those of ``run_ids`` the bundle has met before: imported from it, or its tags and
    notes merged into them (``qex_bundle_merges``)."""
    sql = (
        "SELECT run_id FROM qex_imports WHERE bundle_id = ? AND run_id IN ({ids}) "
        "UNION SELECT run_id FROM qex_bundle_merges WHERE bundle_id = ? AND run_id IN ({ids})"
    )
    found: set[str] = set()
    for start in range(0, len(run_ids), 400):
        part = list(run_ids[start : start + 400])
        marks = _marks(part)
        rows = conn.execute(sql.format(ids=marks), [bundle_id, *part, bundle_id, *part])
        found.update(run_id for (run_id,) in rows)
    return found


def insert_bundle_merges(conn: sqlite3.Connection, rows: Iterable[tuple[str, str]]) -> None:
    """``(run_id, bundle_id)``: the bundle's tags and notes were merged into the run."""
    conn.executemany(
        "INSERT OR IGNORE INTO qex_bundle_merges (run_id, bundle_id) VALUES (?, ?)", rows
    )


# -- qex_remotes ----------------------------------------------------------------------------


def add_remote(conn: sqlite3.Connection, name: str, url: str, options_json: str) -> None:
    conn.execute(
        "INSERT INTO qex_remotes (name, url, storage_options) VALUES (?, ?, ?)",
        (name, url, options_json),
    )


def remove_remote(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("DELETE FROM qex_remotes WHERE name = ?", (name,)).rowcount > 0


def remote(conn: sqlite3.Connection, name: str) -> tuple[str, str] | None:
    row = conn.execute(
        "SELECT url, storage_options FROM qex_remotes WHERE name = ?", (name,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def remotes(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = conn.execute(
        "SELECT name, url, storage_options FROM qex_remotes ORDER BY name"
    ).fetchall()
    return rows
