"""Shell completion of run-ID prefixes, experiment names and backend names from the archive.

Fast on purpose: the database is opened read-only with the standard library alone (no numpy,
no plugins, no migration) and each answer is one indexed lookup per name offered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..store.paths import DB_NAME

if TYPE_CHECKING:
    from ..store.connection import Connection

LIMIT = 50


def _names(
    lookup: Callable[[Connection, str], list[str]],
) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from ..opening import resolve_data_dir
        from ..store.connection import peek

        db = resolve_data_dir(ctx.find_root().params.get("data_dir")) / DB_NAME
        # no archive there (yet), or one being written: offer nothing
        return peek(db, lambda conn: lookup(conn, incomplete))

    return complete


def _run_ids(conn: Connection, prefix: str) -> list[str]:
    from ..store.tables import run_ids_with_prefix

    ids = run_ids_with_prefix(conn, prefix.lower(), LIMIT)
    # the shortest unique prefixes would hide the rest; offer 8 characters, as 'runs' shows
    return sorted({run_id[: max(8, len(prefix))] for run_id in ids})


def _column(column: str) -> Callable[[Connection, str], list[str]]:
    def lookup(conn: Connection, prefix: str) -> list[str]:
        from ..store.tables import names_with_prefix

        return names_with_prefix(conn, column, prefix, LIMIT)

    return lookup


complete_run = _names(_run_ids)
complete_experiment = _names(_column("experiment_name"))
complete_backend = _names(_column("backend_name"))
