"""The one write unit of an archive: every change to its rows and files goes through
:meth:`Writer.unit`.

The outermost unit is one ``BEGIN IMMEDIATE ... COMMIT`` transaction: the files it writes get
their names once the write lock is held and reach the disk before the rows that name them
(:class:`~qex_archive.store.files.PendingFiles`); files its rows stop naming are removed only
after the commit, so a crash leaves orphans, never a row without its file. A unit begun inside
another (an import or a ``gc`` inside ``batch()``) is a savepoint of it: if it fails, its rows
are rolled back and its files removed, and the enclosing unit goes on as it was before it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import ReadOnlyArchive, StorageError
from .files import PendingFiles, storage_faults
from .paths import remove_data_file


class Writer:
    """Writes to one connection (and, given ``root``, the archive directory beside it).
    ``read_only`` says why nothing may be written, or is None."""

    def __init__(
        self, conn: sqlite3.Connection, root: Path | None = None, *, read_only: str | None = None
    ) -> None:
        self.conn = conn
        self.root = root
        self.read_only = read_only
        self._files: PendingFiles | None = None  # the outermost unit's, while one is open
        self._depth = 0
        self._removals: list[str] = []  # stored paths to remove once the outermost unit commits
        self._lost: str | None = None  # the action whose failure ended the open transaction

    @property
    def active(self) -> bool:
        """Whether a unit is open: the write lock is held, and new units are savepoints."""
        return self._files is not None

    def refuse_read_only(self, action: str) -> None:
        if self.read_only:
            where = f" at {self.root}" if self.root is not None else ""
            raise ReadOnlyArchive(
                f"cannot {action}: the archive{where} is read-only ({self.read_only}); "
                "reading commands still work"
            )

    def files(self) -> PendingFiles:
        """Where a unit about to begin writes its files: the open unit's, or new ones that a
        unit is then given (files written before the lock is held keep temporary names)."""
        return self._files if self._files is not None else PendingFiles()

    @contextmanager
    def unit(
        self,
        action: str,
        files: PendingFiles | None = None,
        *,
        many: bool = False,
        faults: bool = True,
    ) -> Iterator[PendingFiles]:
        """One write unit for ``action`` (the words of an error message: "cannot {action}").

        ``files`` are the files already written for it (see :meth:`files`); ``many`` flushes
        them with one ``syncfs`` at the end (a batch). With ``faults``, a failure of the disk
        or the database inside the block becomes one :class:`~qex_archive.errors.StorageError`
        line (``faults=False`` for a block of user code, such as ``batch()``'s)."""
        self.refuse_read_only(action)
        self._refuse_lost(action)
        if self._files is None:
            body = self._outermost(action, files or PendingFiles(gathered=many))
        else:
            if files is not None and files is not self._files:
                raise AssertionError("a nested unit writes to the enclosing unit's files")
            body = self._savepoint(action)
        with body as pending:
            if faults:
                with storage_faults(action):
                    yield pending
            else:
                yield pending

    def remove_after_commit(self, relative_paths: Iterable[str]) -> None:
        """Remove stored files whose rows are gone, once that is committed (at once when no
        unit is open)."""
        if self._files is not None:
            self._removals.extend(relative_paths)
            return
        for relative in relative_paths:
            assert self.root is not None, "files are removed from an archive directory"
            remove_data_file(self.root, relative)

    def pending_removals(self) -> frozenset[str]:
        """Stored paths the open unit removes once it commits (their rows are gone in it,
        not yet for other connections)."""
        return frozenset(self._removals)

    def _refuse_lost(self, action: str) -> None:
        if self._lost is not None:
            raise StorageError(
                f"cannot {action}: the batch was rolled back when it failed to {self._lost}; "
                "nothing of it is stored: start it again"
            )

    @contextmanager
    def _outermost(self, action: str, files: PendingFiles) -> Iterator[PendingFiles]:
        try:
            with storage_faults(action):
                self.conn.execute("BEGIN IMMEDIATE")
                files.publish()  # files written before the lock was held get their names
            self._files, self._removals = files, []
            yield files
            self._refuse_lost(action)  # a part failed in a way that ended the transaction
            with storage_faults(action):
                # the files, written without fsync, reach the disk before the rows naming them
                files.flush()
                self.conn.execute("COMMIT")
        except BaseException:
            # a failed COMMIT (disk full) may leave the transaction open: end it
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            files.discard()
            raise
        finally:
            self._files, self._lost = None, None
            removals, self._removals = self._removals, []
        files.committed()
        # a file the unit wrote again after deleting its run's rows (the same run ID recorded
        # anew) is the new run's
        written = {f"{path.parent.name}/{path.name}" for path in files.paths}
        self.remove_after_commit(relative for relative in removals if relative not in written)

    @contextmanager
    def _savepoint(self, action: str) -> Iterator[PendingFiles]:
        files = self._files
        assert files is not None
        self._depth += 1
        name = f"qex_unit_{self._depth}"
        kept_files, kept_removals = len(files.paths), len(self._removals)
        try:
            with storage_faults(action):
                self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield files
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                files.discard(keep=kept_files)
                del self._removals[kept_removals:]
                if self.conn.in_transaction or self._lost is not None:
                    raise
                # SQLite ends the whole transaction on some errors (a full disk, an I/O error):
                # the enclosing unit is gone with it, and nothing more may join it
                self._lost = action
                if isinstance(exc, StorageError):
                    reason = str(exc).removesuffix("; the archive is unchanged")
                    raise StorageError(
                        f"{reason}; the whole batch was rolled back with it: nothing of it is "
                        "stored"
                    ) from exc
                raise
            with storage_faults(action):
                self.conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1
