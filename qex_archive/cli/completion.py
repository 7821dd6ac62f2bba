"""Shell completion of run-ID prefixes, experiment names and backend names from the archive.

Fast on purpose: the database is opened read-only with the standard library alone (no numpy,
no plugins, no migration) and each answer is one indexed lookup per name offered.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import click

from ..store.paths import DB_NAME

LIMIT = 50


def _names(
    lookup: Callable[[sqlite3.Connection, str], list[str]],
) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from ..opening import resolve_data_dir

        db = resolve_data_dir(ctx.find_root().params.get("data_dir")) / DB_NAME
        try:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                return lookup(conn, incomplete)
            finally:
                conn.close()
        except (sqlite3.Error, OSError, ValueError):
            return []  # no archive there (yet), or one being written: offer nothing

    return complete


def _run_ids(conn: sqlite3.Connection, prefix: str) -> list[str]:
    from ..store.tables import run_ids_with_prefix

    ids = run_ids_with_prefix(conn, prefix.lower(), LIMIT)
    # the shortest unique prefixes would hide the rest; offer 8 characters, as 'runs' shows
    return sorted({run_id[: max(8, len(prefix))] for run_id in ids})


def _column(column: str) -> Callable[[sqlite3.Connection, str], list[str]]:
    def lookup(conn: sqlite3.Connection, prefix: str) -> list[str]:
        from ..store.tables import names_with_prefix

        return names_with_prefix(conn, column, prefix, LIMIT)

    return lookup


complete_run = _names(_run_ids)
complete_experiment = _names(_column("experiment_name"))
complete_backend = _names(_column("backend_name"))
