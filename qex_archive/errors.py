"""Every exception and warning qex-archive raises, defined here and nowhere else.

Every message is one line that says what is wrong and what to do; the CLI prints it as is.
The hierarchy (``code`` is one of the stable codes of :mod:`qex_archive.codes`; a class with
two bases is drawn under the first)::

    Exception
    ├── QexError                    anything qex-archive refuses or fails at on purpose
    │   ├── ArchiveError            the archive on disk cannot be used as it is
    │   │   ├── ArchiveNotFound     there is no archive where one was expected
    │   │   ├── SchemaTooNew        the archive was written by a newer qex-archive
    │   │   ├── StorageError        the disk or the database failed while writing
    │   │   ├── ReadOnlyArchive     a change was asked of an archive that can only be read
    │   │   ├── ForeignFile         a stored path is not the archive's own (``code``: QEX-C)
    │   │   └── StoredFileChanged   a stored file changed or went while pack read the runs
    │   ├── RunNotFound             no run matches an ID or prefix (also a LookupError)
    │   ├── AmbiguousRunId          an ID prefix matches several runs (also a LookupError)
    │   ├── InvalidInput            an argument is not acceptable (also a ValueError)
    │   │   ├── InvalidState        a density matrix or state vector cannot be archived
    │   │   ├── InvalidJSON         params, metadata or a filter value is not plain, finite JSON
    │   │   └── InvalidFilter       a query filter cannot be understood
    │   ├── PluginError             a plugin cannot be loaded or breaks the hook contracts
    │   └── BundleError             a bundle is malformed, unsafe or inconsistent (``code``)
    ├── SinkError                   read_bundle's ``sink`` failed: the disk, not the bundle
    ├── ValueError
    │   └── NpyFormatError          bytes that are not a .npy file the store's reader accepts
    └── Warning
        └── UserWarning
            ├── PluginWarning       a plugin failed while a run was recorded; the run was kept
            └── NonPhysicalWarning  a quantity was computed on a state that is not physical

SinkError and NpyFormatError are outside QexError on purpose: neither says what is wrong
with the user's input. A SinkError (read_bundle raises it only when given a ``sink``) means the
caller's own writes failed; the importer re-raises its ``cause`` (the OSError) as a
StorageError, and no handler of QexError may take a full disk for a bad bundle. An
NpyFormatError comes from the store's ``.npy`` reader; its callers turn it into a ``check``
finding, a BundleError or an ArchiveError naming the file.

The modules that raise them re-export them (``qex_archive.plugins.PluginError``,
``qex_archive.bundle.BundleError``, ``qex_archive.store.paths.ForeignFile``, ...), and the
public ones are exported by ``qex_archive``. This module imports nothing of the package and no
third-party module: everything imports it.
"""

from __future__ import annotations


class QexError(Exception):
    """Base class of every error qex-archive raises on purpose."""


class ArchiveError(QexError):
    """The archive on disk cannot be used as it is."""


class ArchiveNotFound(ArchiveError):
    """There is no archive where one was expected."""


class SchemaTooNew(ArchiveError):
    """The archive was written by a newer qex-archive than this one."""


class StorageError(ArchiveError):
    """The disk or the database failed while writing (full, read-only, I/O error, locked)."""


class ReadOnlyArchive(ArchiveError):
    """A change was asked of an archive that can only be read."""


class ForeignFile(ArchiveError):
    """A stored path that is not one of the archive's own files. ``code`` is the ``check``
    code that reports it."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class StoredFileChanged(ArchiveError):
    """A stored file is missing, or differs from the checksum pack read for it: damage (what
    ``check`` finds), or a write committed since pack read the rows (``render`` replaces a
    page under its name), which pack answers by reading the runs again."""

    def __init__(self, message: str, relative: str) -> None:
        super().__init__(message)
        self.relative = relative


class RunNotFound(QexError, LookupError):
    """No run matches the given ID or prefix."""


class AmbiguousRunId(QexError, LookupError):
    """A run ID prefix matches more than one run."""


class InvalidInput(QexError, ValueError):
    """An argument given to qex-archive is not acceptable."""


class InvalidState(InvalidInput):
    """A density matrix (or state vector) cannot be archived."""


class InvalidJSON(InvalidInput):
    """Params, metadata or a filter value is not plain, finite JSON."""


class InvalidFilter(InvalidInput):
    """A query filter cannot be understood."""


class PluginError(QexError):
    """A plugin could not be loaded or does not follow the hook contracts."""


class BundleError(QexError):
    """A bundle is malformed, unsafe or inconsistent. ``code`` is stable (``QEX-Bnnn``)."""

    def __init__(self, code: str, message: str, member: str | None = None) -> None:
        self.code = code
        self.member = member
        # Every problem found when reading went on past the first (read_bundle's
        # all_problems=True); this error itself when there was just one.
        self.problems: list[BundleError] = [self]
        where = f"{member}: " if member else ""
        super().__init__(f"{code} {where}{message}")


class NpyFormatError(ValueError):
    """The bytes are not a ``.npy`` file :mod:`qex_archive.store.npyfile` accepts."""


class SinkError(Exception):
    """Writing a payload member to read_bundle's ``sink`` failed: the archive's disk, not the
    bundle, is at fault (``cause`` holds the OSError)."""

    def __init__(self, cause: OSError) -> None:
        self.cause = cause
        super().__init__(str(cause))


class PluginWarning(UserWarning):
    """A plugin failed while a run was recorded; the run was kept without its contribution."""


class NonPhysicalWarning(UserWarning):
    """A quantity was computed on a state that is not physical, as it is stored."""
