"""Finding and opening an archive directory: where it is, creating it, and whether it can be
written."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .archive import Archive
from .errors import ArchiveError, ArchiveNotFound
from .store.connection import connect, connect_read_only
from .store.files import storage_faults
from .store.migrations import LATEST_VERSION, migrate, schema_version
from .store.paths import DATA_DIRS, DB_NAME

if TYPE_CHECKING:
    import pluggy

DEFAULT_DIR = "qex_data"
ENV_VAR = "QEX_DATA"


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The archive directory: ``path`` if given, else ``$QEX_DATA``, else ``./qex_data``."""
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(path).expanduser()


def open_archive(
    path: str | os.PathLike[str] | None = None,
    *,
    create: bool = True,
    plugins: pluggy.PluginManager | None = None,
    renderers: Sequence[str] | None = None,
    capture: bool | None = None,
) -> Archive:
    """Open the archive at ``path`` (see :func:`resolve_data_dir`), creating it if missing
    unless ``create=False``, and bring its schema up to date.

    An archive that cannot be written (a read-only mount, no write permission) is opened for
    reading: listing, showing, checking and packing work, and changes are refused in one line.

    ``plugins`` is a plugin manager to use instead of the installed plugins (see
    :func:`qex_archive.plugins.make_plugin_manager`); ``renderers`` names the artifacts
    ``record`` makes by default (else ``$QEX_ARCHIVE_RENDERERS``, else every renderer);
    ``capture=False`` (or ``$QEX_ARCHIVE_CAPTURE=none``) records runs without their context
    (git commit, script, environment).
    """
    root = resolve_data_dir(path)
    if root.exists() and not root.is_dir():
        raise ArchiveError(f"{root} is a file, not an archive directory; choose another --data-dir")
    db_path = root / DB_NAME
    if not db_path.exists():
        if not create:
            raise ArchiveNotFound(
                f"no archive at {root}; create one with '{init_command(path)}' "
                "or point --data-dir / $QEX_DATA at an existing one"
            )
        with storage_faults(f"create the archive directory {root}"):
            root.mkdir(parents=True, exist_ok=True)
    read_only = _read_only_reason(root, db_path)
    try:
        if read_only:
            if not db_path.exists():
                raise ArchiveError(f"cannot create an archive in {root}: {read_only}")
            conn = connect_read_only(db_path)
            _refuse_stale_read_only(conn, root)
        else:
            for sub in DATA_DIRS:
                if not os.path.lexists(root / sub):
                    with storage_faults(f"create {root / sub}"), suppress(FileExistsError):
                        (root / sub).mkdir()  # another process opening it may be first
            conn = connect(db_path)
            migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"{db_path} is not a usable SQLite database ({exc})") from None
    archive = Archive(root, conn, plugins=plugins, renderers=renderers, read_only=read_only)
    from .recording.context import capture_enabled

    archive.capture = capture_enabled(capture)
    return archive


def init_command(path: str | os.PathLike[str] | None) -> str:
    """The command that creates the archive the user pointed at."""
    if path is None or str(path) in ("", DEFAULT_DIR) or os.environ.get(ENV_VAR) == str(path):
        return "qex-archive init"
    return f"qex-archive --data-dir {path} init"


def _read_only_reason(root: Path, db_path: Path) -> str | None:
    if not os.access(root, os.W_OK):
        return f"no write permission for {root}, or it is on a read-only file system"
    if db_path.exists() and not os.access(db_path, os.W_OK):
        return f"no write permission for {db_path}"
    return None


def _refuse_stale_read_only(conn: sqlite3.Connection, root: Path) -> None:
    version = schema_version(conn)
    if version < LATEST_VERSION:
        conn.close()
        raise ArchiveError(
            f"the archive at {root} was written by an older qex-archive and needs upgrading, "
            "which cannot be done while it is read-only; open it once where it can be written"
        )
    if version > LATEST_VERSION:
        conn.close()
        migrate(conn)  # raises SchemaTooNew with the upgrade hint
