"""Finding and opening an archive directory: where it is, creating it, and whether it can be
written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .archive import Archive
from .errors import ArchiveError, ArchiveNotFound, InvalidInput
from .store.connection import open_database
from .store.files import storage_faults
from .store.paths import DATA_DIRS, DB_NAME, DEFAULT_DIR, ENV_VAR, resolve_data_dir

__all__ = [
    "init_command",
    "open_archive",
    "removed_unless_kept",
    "resolve_data_dir",
    "unpack_bundle",
]

if TYPE_CHECKING:
    import pluggy

    from .bundle import ImportReport, Limits
    from .store.query import RunFilter


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
    if read_only and not db_path.exists():
        raise ArchiveError(f"cannot create an archive in {root}: {read_only}")
    if not read_only:
        for sub in DATA_DIRS:
            if not os.path.lexists(root / sub):
                with storage_faults(f"create {root / sub}"), suppress(FileExistsError):
                    (root / sub).mkdir()  # another process opening it may be first
    conn = open_database(db_path, read_only=bool(read_only))
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


def unpack_bundle(
    path: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    progress: Callable[[int], None] | None = None,
    storage_options: dict[str, Any] | None = None,
    selection: RunFilter | None = None,
) -> ImportReport:
    """Create a new archive in ``directory`` holding the bundle's runs (those ``selection``
    matches, as for :func:`~qex_archive.bundle.import_bundle`). If that fails, the directory
    is left as it was (absent, or empty)."""
    from .bundle.importer import import_bundle

    target = Path(directory)
    if (target / DB_NAME).exists() or (target.is_dir() and any(target.iterdir())):
        raise InvalidInput(f"{target} is not empty; unpack into a new directory, or use 'import'")
    with removed_unless_kept(target), open_archive(target) as archive:
        return import_bundle(
            archive,
            path,
            limits=limits,
            progress=progress,
            storage_options=storage_options,
            selection=selection,
        )


@contextmanager
def removed_unless_kept(target: Path, *, keep: bool = True) -> Iterator[None]:
    """Remove what the block created in ``target`` if it fails (or, with ``keep=False``, in
    any case): the directory itself when it did not exist, else its new entries. A refused
    import or unpack into a new place leaves nothing there, so a retry is not refused."""
    target = resolve_data_dir(target)
    existed = target.is_dir()
    before = set(os.listdir(target)) if existed else set()
    failed = True
    try:
        yield
        failed = False
    finally:
        if failed or not keep:
            _remove_new_entries(target, existed, before)


def _remove_new_entries(target: Path, existed: bool, before: set[str]) -> None:
    if not existed:
        shutil.rmtree(target, ignore_errors=True)
        return
    if not target.is_dir():
        return
    for name in set(os.listdir(target)) - before:
        entry = target / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with suppress(OSError):
                entry.unlink()
