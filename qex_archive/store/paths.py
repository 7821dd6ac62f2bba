"""The archive's own files, and the one way qex reaches them.

The rule: qex reads, packs, renders or deletes only regular files named ``results/NAME`` or
``artifacts/NAME`` (one path component, no temporary name), reached without following a
symbolic link: the data directory must be a real directory of the archive (checked with
``lstat``) and the file is opened with ``O_NOFOLLOW`` and checked to be a regular file. A row
whose path is anything else (``qex.db``, ``../x``, an absolute path, a directory, a link) is
refused with :class:`ForeignFile`, and ``check`` reports it. Listing (``gc``, ``check``) never
descends through a symbolic link. ``rm`` removes a file only when no other row refers to it
(see ``Archive.delete``); removal here only ever unlinks a regular file.

Every command that touches a stored file goes through this module: :func:`data_path` for a
path to write to, :func:`open_data_file` to read, :func:`remove_data_file` to delete.

The other side of the rule: a file or directory a *user* names for qex to write (``export -o``,
``pack -o``, ``report -o``, ``unpack DIRECTORY``) is checked by :func:`refuse_archive_output`,
so no output lands inside the archive's directory (its ``reports/`` folder excepted) or over
one of its stored files, whatever links lead there.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..codes import LINKED_DIR, NOT_OWN_PATH, NOT_REGULAR_FILE
from ..errors import ForeignFile as ForeignFile
from ..errors import InvalidInput
from .files import is_temp_name

DB_NAME = "qex.db"
RESULTS_DIR = "results"
ARTIFACTS_DIR = "artifacts"
DATA_DIRS = (RESULTS_DIR, ARTIFACTS_DIR)


def rho_path(run_id: str) -> str:
    """The seed's name of a run's density matrix: ``results/{run_id}_rho.npy``."""
    return f"{RESULTS_DIR}/{run_id}_rho.npy"


def artifact_name(run_id: str, name: str, extension: str) -> str:
    """The seed's file name of a run's artifact: ``{run_id}_{name}.{extension}``."""
    return f"{run_id}_{name}.{extension}"


def artifact_path(run_id: str, name: str, extension: str) -> str:
    """The stored path of a run's artifact: ``artifacts/{run_id}_bloch.html``, say."""
    return f"{ARTIFACTS_DIR}/{artifact_name(run_id, name, extension)}"


REPORTS_DIR = "reports"  # where 'report' writes by default: the one folder outputs may go to
DEFAULT_DIR = "qex_data"  # the archive directory when none is named
ENV_VAR = "QEX_DATA"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def split_relative(relative: object, *, temporary: bool = False) -> tuple[str, str]:
    """``(directory, name)`` of a stored path, or :class:`ForeignFile` when the path is not
    ``results/NAME`` or ``artifacts/NAME`` (a temporary name only when ``temporary``)."""
    if isinstance(relative, str):
        directory, sep, name = relative.partition("/")
        if (
            sep
            and directory in DATA_DIRS
            and name not in ("", ".", "..")
            and "/" not in name
            and "\\" not in name
            and "\x00" not in name
            and (temporary or not is_temp_name(name))
        ):
            return directory, name
    raise ForeignFile(
        NOT_OWN_PATH,
        f"stored path {str(relative)[:200]!r} is not a file of this archive "
        f"(only {RESULTS_DIR}/NAME and {ARTIFACTS_DIR}/NAME are); correct the row",
    )


def data_dir(root: Path, directory: str) -> Path:
    """``root/directory``, refused when it is a symbolic link or not a directory."""
    path = root / directory
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path  # nothing stored yet; writers create it
    if stat.S_ISLNK(mode):
        raise ForeignFile(
            LINKED_DIR,
            f"{directory}/ is a symbolic link; qex keeps its files only in real directories "
            f"inside the archive (replace the link by the directory it points to)",
        )
    if not stat.S_ISDIR(mode):
        raise ForeignFile(LINKED_DIR, f"{directory}/ is not a directory; move it away")
    return path


class DataPaths:
    """:func:`data_path` for many files of one archive (a pack or an import of 100,000 runs):
    plain strings, each data directory checked (and, with ``create``, made) once."""

    def __init__(self, root: Path, *, create: bool = False) -> None:
        self.root, self.create = root, create
        self.folders: dict[str, str] = {}  # results, artifacts -> where they are

    def __call__(self, relative: object) -> str:
        directory, name = split_relative(relative)
        folder = self.folders.get(directory)
        if folder is None:
            path = data_dir(self.root, directory)
            if self.create and not path.is_dir():
                path.mkdir()
            folder = self.folders[directory] = os.fspath(path)
        return os.path.join(folder, name)


def data_path(root: Path, relative: object, *, temporary: bool = False) -> Path:
    """The absolute path of a stored path that follows the rule (the file may not exist)."""
    directory, name = split_relative(relative, temporary=temporary)
    return data_dir(root, directory) / name


@dataclass(frozen=True)
class DataFileStat:
    size: int


def stat_data_file(root: Path, relative: object) -> DataFileStat | None:
    """Size of a stored file; ``None`` when it does not exist; :class:`ForeignFile` when it is
    not a regular file (directory, link, device)."""
    path = data_path(root, relative)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    _require_regular(info.st_mode, relative)
    return DataFileStat(info.st_size)


def open_data_file(root: Path, relative: object) -> io.BufferedReader:
    """Open a stored file for reading, never through a symbolic link.

    :class:`FileNotFoundError` when it does not exist; :class:`ForeignFile` when it is not a
    regular file of this archive."""
    return os.fdopen(_open_checked(data_path(root, relative), relative), "rb")


def read_data_file(path: str | Path, relative: str, limit: int) -> bytes:
    """At most ``limit`` bytes of a stored file whose ``path`` came from :func:`data_path`
    (plain os calls: half the cost of ``open()`` for the many small files of a bundle)."""
    fd = _open_checked(path, relative)
    try:
        parts = []
        while limit > 0 and (chunk := os.read(fd, limit)):
            parts.append(chunk)
            limit -= len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


def open_checked_path(path: str | Path, relative: str) -> io.BufferedReader:
    """:func:`open_data_file` for a ``path`` that already came from :func:`data_path`."""
    return os.fdopen(_open_checked(path, relative), "rb")


def _open_checked(path: str | Path, relative: object) -> int:
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _require_regular(stat.S_IFLNK, relative)
        if exc.errno == errno.EISDIR:
            _require_regular(stat.S_IFDIR, relative)
        raise
    try:
        _require_regular(os.fstat(fd).st_mode, relative)
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_data_file(root: Path, relative: object, *, temporary: bool = False) -> bool:
    """Unlink a stored file if it is a regular file of this archive (or, with ``temporary``,
    an unfinished write); anything else (a link, a directory, a path outside) is left alone.
    Returns whether a file was removed."""
    try:
        path = data_path(root, relative, temporary=temporary)
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        path.unlink()
    except (ForeignFile, OSError):  # left as an orphan: 'check' reports it, 'gc' retries
        return False
    return True


@dataclass(frozen=True)
class Listing:
    """What the data directories hold: regular files, and entries qex will not touch."""

    files: set[str]
    strange: list[tuple[str, str]]  # (relative path, why), e.g. a symbolic link


def list_data_files(root: Path) -> Listing:
    """Every entry of ``results/`` and ``artifacts/``, without following any link."""
    files: set[str] = set()
    strange: list[tuple[str, str]] = []
    for directory in DATA_DIRS:
        try:
            path = data_dir(root, directory)
        except ForeignFile as exc:
            strange.append((f"{directory}/", str(exc)))
            continue
        if not path.is_dir():
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                relative = f"{directory}/{entry.name}"
                if entry.is_file(follow_symlinks=False):
                    files.add(relative)
                elif entry.is_symlink():
                    strange.append((relative, "is a symbolic link; qex never follows one"))
                else:
                    strange.append((relative, "is not a regular file"))
    return Listing(files, sorted(strange))


def _require_regular(mode: int, relative: object) -> None:
    if stat.S_ISREG(mode):
        return
    what = (
        "a symbolic link"
        if stat.S_ISLNK(mode)
        else "a directory"
        if stat.S_ISDIR(mode)
        else "not a regular file"
    )
    raise ForeignFile(
        NOT_REGULAR_FILE,
        f"{relative} is {what}; qex reads and deletes only regular files inside the archive",
    )


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The archive directory: ``path`` if given, else ``$QEX_DATA``, else ``./qex_data``."""
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(path).expanduser()


def refuse_archive_output(
    root: str | os.PathLike[str], output: str | os.PathLike[str], *, what: str = "output"
) -> None:
    """Refuse, with :class:`InvalidInput`, a file or directory a user named for qex to write
    when it lies inside the archive directory ``root`` (the archive's ``reports/`` folder
    excepted), the paths of both resolved and every symbolic link followed, or when it is an
    existing file that is also one of the archive's stored files (a hard link to ``qex.db``,
    a density matrix or a page). Called before anything is written; a path that does not
    exist yet is judged by where it would be created."""
    archive = os.path.realpath(root)
    target = os.path.realpath(output)
    reports = os.path.join(archive, REPORTS_DIR)
    if _within(target, archive) and not _within(target, reports):
        raise InvalidInput(
            f"{what} {os.fspath(output)!r} is inside the archive {os.fspath(root)!r} "
            f"({target}); qex writes nothing you name there (it could replace the "
            "database or a stored file): choose a place outside the archive"
        )
    try:
        info = os.stat(target)
    except OSError:
        return  # nothing there yet
    linked = stat.S_ISREG(info.st_mode) and info.st_nlink > 1
    if linked and (info.st_dev, info.st_ino) in _stored_identities(Path(archive)):
        raise InvalidInput(
            f"{what} {os.fspath(output)!r} is another name (a hard link) of a file of the "
            f"archive {os.fspath(root)!r}; writing it would change the archive: choose "
            "another file"
        )


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _stored_identities(root: Path) -> set[tuple[int, int]]:
    """``(device, inode)`` of the database and of every regular file in the data folders."""
    found: set[tuple[int, int]] = set()
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        try:
            info = os.lstat(root / name)
        except OSError:
            continue
        found.add((info.st_dev, info.st_ino))
    for directory in DATA_DIRS:
        try:
            entries = os.scandir(root / directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    found.add((info.st_dev, info.st_ino))
    return found
