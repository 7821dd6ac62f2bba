"""Files on disk: crash-safe writes and checksums.

A file is written under a temporary name in its final directory and renamed over its final
name; before the database row that points at it is committed, the file and its directory are
flushed to disk (:func:`make_durable`). A process killed at any moment therefore leaves at most
an orphan file (the temporary or the renamed one), never a row whose file is missing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..errors import StorageError

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

TEMP_PREFIX = ".tmp-"
CHUNK_SIZE = 1 << 20


def temp_name_for(path: Path) -> Path:
    import secrets

    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def temp_name_owner(name: str) -> int | None:
    """The process ID in a temporary name (see :func:`temp_name_for`), if it has one."""
    pid = name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
    return int(pid) if is_temp_name(name) and pid.isdigit() else None


@contextmanager
def atomic_output(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A stream whose bytes appear at ``path`` all at once, durably, when the block ends;
    if the block raises, ``path`` is left as it was and the temporary file removed.

    With ``durable=False`` the file and its directory are not fsynced: the caller makes its
    files durable together with :func:`make_durable` before committing the rows that point
    at them (what the archive's write transactions do)."""
    temp = temp_name_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb", closefd=True) as stream:
            yield stream
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise
    if durable:
        fsync_path(path.parent)


def atomic_write(path: Path, chunks: Iterable[bytes | memoryview], *, durable: bool = True) -> None:
    """Write ``chunks`` to ``path`` so that ``path`` is either absent or complete."""
    with atomic_output(path, durable=durable) as stream:
        for chunk in chunks:
            stream.write(chunk)


FEW_FILES = 16  # up to this many, an fsync each, all at once; more, one syncfs


def write_unnamed(path: Path, chunks: Iterable[bytes | memoryview]) -> Path:
    """Write ``chunks`` to a new file beside ``path`` under a temporary name of this process
    (see :func:`temp_name_for`), without fsync; that name."""
    temp = temp_name_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb", closefd=True) as stream:
            for chunk in chunks:
                stream.write(chunk)
    except BaseException:
        remove_quietly(temp)
        raise
    return temp


def make_durable(paths: Iterable[Path], directories: Iterable[Path] = ()) -> None:
    """Flush files written without fsync to disk, and the renames that named them (and
    those in ``directories``).

    A handful of files (a record's one to three) are fsynced with their directories all at
    once, so that the file system commits them together (faster than one after another) and,
    unlike a ``syncfs``, without waiting for what other programs have written to the same
    disk. More files (a batch) are flushed by one ``syncfs(2)`` of their file system on Linux
    (for thousands of small files much faster than an fsync each; since Linux 5.8 it also
    reports any write-back error met since the files were opened), elsewhere by an fsync each,
    many in flight at once; then each directory is fsynced. The figures are in
    benchmarks/README.md ("Figures behind the code's choices")."""
    files = list(paths)
    folders = sorted({*directories, *(path.parent for path in files)})
    if len(files) <= FEW_FILES:
        fsync_all([*files, *folders])
        return
    fd = os.open(folders[0], os.O_RDONLY)
    try:
        synced = _syncfs(fd)
    finally:
        os.close(fd)
    if not synced:
        fsync_all(files)
    for folder in folders:
        fsync_path(folder)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory so that renames in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_all(paths: Iterable[Path]) -> None:
    """fsync each path, many in flight at once (fsync releases the GIL); the first failure
    is raised once all have finished."""
    todo = list(paths)
    futures = [_in_background(fsync_path, path) for path in todo] if len(todo) > 1 else []
    if not futures:
        for path in todo:
            fsync_path(path)
    failures = [future.exception() for future in futures]  # each waits for its fsync
    for failure in failures:
        if failure is not None:
            raise failure


def _start_fsyncs(paths: Sequence[Path]) -> Future[None]:
    """fsync the paths one after another on a thread, returning once the thread has begun.

    Waiting for it to begin is what lets it run beside the caller: a thread that has not yet
    reached ``fsync`` needs the GIL, which a busy caller would hold for up to the switch
    interval (5 ms)."""
    started = threading.Event()

    def flush() -> None:
        fds: list[int] = []
        try:
            try:
                fds += (os.open(path, os.O_RDONLY) for path in paths)
            finally:
                started.set()
            for fd in fds:
                os.fsync(fd)
        finally:
            for fd in fds:
                os.close(fd)

    future = _in_background(flush)
    started.wait()
    return future


def _in_background(work: Callable[..., None], *args: object) -> Future[None]:
    """``work(*args)`` on one of the threads that flush files; done here and now where no
    thread may start (the interpreter is exiting: an atexit handler recording a run)."""
    from concurrent.futures import Future

    try:
        return _fsync_pool().submit(work, *args)
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        pass
    future: Future[None] = Future()
    try:
        work(*args)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result(None)
    return future


@cache
def _fsync_pool() -> ThreadPoolExecutor:
    # raises RuntimeError when first asked for while the interpreter exits
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=16, thread_name_prefix="qex-fsync")


# A forked child has none of its parent's threads: it starts a pool of its own when it needs one.
os.register_at_fork(after_in_child=_fsync_pool.cache_clear)


class PendingFiles:
    """The files one write transaction adds, written without fsync and made durable by
    :meth:`flush` before it commits: each file and its directory fsynced, all at once, or for
    a batch (``gathered=True``), everything with one ``syncfs`` (see :func:`make_durable`).

    No file takes its name before the writer holds the write lock: a file written earlier (a
    run's density matrix, written while the run is still being computed) keeps a temporary
    name of this process until :meth:`publish`, which the transaction calls once it holds the
    lock. ``check`` and ``gc``, which look at the files under that lock, so never see a named
    file whose row is still to come, and leave the temporary files of a live process alone.

    A file that replaces one of the same name (a page rendered again) keeps its temporary name
    until :meth:`flush`, when it is durable: it is renamed over the old file just before the
    commit, and a second name of the old file is kept until :meth:`committed`, so that a
    failed transaction puts the old file back.

    The files are flushed together at the end, which the file system commits in one journal
    transaction. A file written with ``early=True`` (a large density matrix) starts flushing
    on a thread at once, so that the disk works while the run is computed; handing a file to
    a thread costs more than a small file's flush gains (see benchmarks/README.md)."""

    def __init__(self, *, gathered: bool = False) -> None:
        self.paths: list[Path] = []
        self._names: set[Path] = set()
        self._gathered = gathered
        self._published = False  # whether the write lock is held: files get their names
        self._unnamed: dict[Path, Path] = {}  # name -> temporary name, until published
        self._replacements: dict[Path, Path] = {}  # name -> temporary name, until flushed
        self._backups: dict[Path, Path] = {}  # replaced name -> its old file, until committed
        self._unflushed: list[Path] = []
        self._unsynced_directories: set[Path] = set()
        self._flushing: list[Future[None]] = []

    def __contains__(self, path: Path) -> bool:
        return path in self._names

    def write(
        self,
        path: Path,
        chunks: Iterable[bytes | memoryview],
        *,
        early: bool = False,
        replaces: bool = False,
    ) -> None:
        """Write a new file to be named ``path``; with ``replaces``, over the file of that
        name, which comes back if the transaction fails."""
        written = write_unnamed(path, chunks)
        if replaces:
            self._replacements[path] = written
        elif self._published:
            try:
                _name_new(written, path)
            except BaseException:
                remove_quietly(written)
                raise
            written = path
        else:
            self._unnamed[path] = written
        self.paths.append(path)
        self._names.add(path)
        self._unsynced_directories.add(path.parent)
        if early and not self._gathered:
            self._flushing.append(_start_fsyncs([written]))  # its directory once it is named
        else:
            self._unflushed.append(written if replaces else path)

    def publish(self) -> None:
        """Give the files written so far their names; those written from now on get theirs
        at once. Called with the write lock held."""
        for path, temp in list(self._unnamed.items()):
            _name_new(temp, path)
            del self._unnamed[path]
        self._published = True

    def adopt(self, path: Path) -> None:
        """Count a file already durable and named ``path`` (a staged file moved into place
        under the write lock) among this transaction's: its name is flushed with the others,
        and it is removed if the transaction fails."""
        self.paths.append(path)
        self._names.add(path)
        self._unsynced_directories.add(path.parent)

    def flush(self) -> None:
        self.publish()
        for future in self._flushing:
            future.result()  # the first failure, once raised, is the transaction's
        self._flushing = []
        make_durable(self._unflushed, self._unsynced_directories)
        self._unflushed = []
        self._unsynced_directories = set()
        if self._replacements:
            directories = {path.parent for path in self._replacements}
            for path, temp in list(self._replacements.items()):
                self._replace(temp, path)
                del self._replacements[path]
            fsync_all(directories)

    def committed(self) -> None:
        """The rows are committed: the old files of replaced names are not needed again."""
        for backup in self._backups.values():
            remove_quietly(backup)
        self._backups = {}

    def discard(self, keep: int = 0) -> None:
        """Remove the files written after the first ``keep`` (all of them by default); a
        replaced file comes back under its name."""
        if self._flushing:
            from concurrent.futures import wait

            wait(self._flushing)  # none still flushing a file about to be removed
        gone = set(self.paths[keep:])
        gone.update(temp for path, temp in self._replacements.items() if path in gone)
        for path in self.paths[keep:]:
            self._names.discard(path)
            backup = self._backups.pop(path, None)
            replacement = self._replacements.pop(path, None)
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, path)
                    # a rename between two links of one file does nothing: the old file was
                    # not replaced yet, and its second name goes
                    remove_quietly(backup)
                elif replacement is None:
                    self._unnamed.pop(path, path).unlink()
            if replacement is not None:
                remove_quietly(replacement)
        self._unflushed = [path for path in self._unflushed if path not in gone]
        del self.paths[keep:]

    def _replace(self, temp: Path, path: Path) -> None:
        # a second name for the old file first, so that a failed commit can put it back
        backup = temp_name_for(path)
        try:
            os.link(path, backup)
        except FileNotFoundError:
            pass  # nothing to replace
        else:
            self._backups[path] = backup
        os.replace(temp, path)


def _name_new(temp: Path, path: Path) -> None:
    """Give a new file its name, never the name of a file already there (a run ID that is
    taken, or a file left by another tool): that one is another run's, or nobody's to lose.
    Called under the write lock, under which no other writer names files."""
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "a file of this name exists already", str(path))
    os.replace(temp, path)


class StagingDirectory:
    """Many new files in one directory, made durable together by :meth:`sync` (see
    :func:`make_durable`). The directory stays open meanwhile, so that ``syncfs`` reports any
    write-back error met since."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._where = os.fspath(directory)
        self._fd = os.open(directory, os.O_RDONLY)

    def create(self, name: str) -> BinaryIO:
        """A new file (refused if the name exists), to be written and closed by the caller."""
        return open(os.path.join(self._where, name), "xb")  # a string join: 200,000 of them

    def sync(self) -> None:
        """Every file in the directory made durable, and their names. (No list of them is
        kept: an import of 100,000 runs stages 200,000.)"""
        if not _syncfs(self._fd):
            with os.scandir(self.directory) as entries:
                fsync_all(Path(entry.path) for entry in entries)
        fsync_path(self.directory)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> StagingDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _syncfs(fd: int) -> bool:
    """``syncfs(2)`` on the file system holding ``fd``; False where the C library lacks it."""
    call = _syncfs_function()
    if call is None:
        return False
    if call(fd) != 0:
        import ctypes

        error = ctypes.get_errno()
        raise OSError(error, f"cannot flush the files to disk: {os.strerror(error)}")
    return True


@cache
def _syncfs_function() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def sha256_of_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 hex digest of a file (one the caller chose, not a stored path)."""
    with path.open("rb") as stream:
        return sha256_of_stream(stream)


def sha256_of_stream(stream: BinaryIO) -> tuple[int, str]:
    """Size and SHA-256 hex digest of what is left in ``stream``, read in chunks."""
    import hashlib

    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


_OS_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "an input/output error (the disk may be failing)",
    errno.EEXIST: "a file of that name exists already",
}


def failure_reason(exc: BaseException) -> str:
    """What went wrong with the disk or the database, in a few words."""
    if isinstance(exc, OSError):
        reason = _OS_REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        return f"{reason} ({exc.filename})" if exc.filename else reason
    text = str(exc).lower()
    if "full" in text:
        return "the disk is full"
    if "readonly" in text or "read-only" in text:
        return "the database is read-only"
    if "locked" in text or "busy" in text:
        from .connection import BUSY_TIMEOUT_SECONDS

        return f"the database stayed locked by another process for {BUSY_TIMEOUT_SECONDS:.0f} s"
    if "i/o" in text:
        return "an input/output error (the disk may be failing)"
    return str(exc)


@contextmanager
def storage_faults(action: str) -> Iterator[None]:
    """Turn a failure of the disk or the database into a one-line :class:`StorageError`.
    The caller has already undone its own writes when the exception passes through here."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(
            f"cannot {action}: {failure_reason(exc)}; the archive is unchanged"
        ) from exc
