"""Shell completion of run-ID prefixes, experiment names and backend names from the archive.

Fast on purpose: the database is opened read-only with the standard library alone (no numpy,
no plugins, no migration) and each answer is one indexed lookup per name offered.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..store.paths import DB_NAME

if TYPE_CHECKING:
    from ..store.connection import Connection

LIMIT = 50
COMPLETE_VAR = "_QEX_ARCHIVE_COMPLETE"  # click sets it to "bash_complete", "zsh_complete", ...


def _names(
    lookup: Callable[[Connection, str], list[str]],
) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from ..opening import resolve_data_dir
        from ..store.connection import peek

        db = resolve_data_dir(ctx.find_root().params.get("data_dir")) / DB_NAME
        # no archive there (yet), or one being written: offer nothing
        return _for_the_shell(peek(db, lambda conn: lookup(conn, incomplete)))

    return complete


def _for_the_shell(values: list[str]) -> list[str]:
    """Names from an archive (or a stranger's bundle) as the shell may insert them: bash puts
    a completion on the command line as it is, where ``ghz $(touch x)`` would run when Enter is
    pressed, so each is quoted for it; zsh and fish quote what they insert themselves."""
    if os.environ.get(COMPLETE_VAR, "").startswith("bash"):
        return [shlex.quote(value) for value in values]
    return values


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
