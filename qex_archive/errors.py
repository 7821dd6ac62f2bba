"""The exceptions qex-archive raises.

Every message is one line that says what is wrong and what to do; the CLI prints it as is.
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


class StorageError(ArchiveError):
    """The disk or the database failed while writing (full, read-only, I/O error, locked)."""


class ReadOnlyArchive(ArchiveError):
    """A change was asked of an archive that can only be read."""
