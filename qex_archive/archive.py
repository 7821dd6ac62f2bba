"""The archive: one directory holding ``qex.db``, ``results/`` and ``artifacts/``."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from . import __version__
from .database import connect, write_transaction
from .errors import (
    AmbiguousRunId,
    ArchiveError,
    ArchiveNotFound,
    InvalidInput,
    InvalidState,
    QexError,
    RunNotFound,
)
from .jsonvalues import dumps, json_object
from .migrations import migrate
from .query import RunFilter
from .run import RUN_COLUMNS, Artifact, Run, RunRow
from .storage import atomic_write, remove_quietly
from .timeutil import to_timestamp

DB_NAME = "qex.db"
RESULTS_DIR = "results"
ARTIFACTS_DIR = "artifacts"
DEFAULT_DIR = "qex_data"
ENV_VAR = "QEX_DATA"
RESERVED_METADATA_KEYS = ("state", "validation", "backend", "qex")
MAX_NAME_LENGTH = 256

_SELECT_RUNS = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"


def resolve_data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The archive directory: ``path`` if given, else ``$QEX_DATA``, else ``./qex_data``."""
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(path).expanduser()


def open_archive(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Archive:
    """Open the archive at ``path`` (see :func:`resolve_data_dir`), creating it if missing
    unless ``create=False``, and bring its schema up to date."""
    root = resolve_data_dir(path)
    if root.exists() and not root.is_dir():
        raise ArchiveError(f"{root} is a file, not an archive directory; choose another --data-dir")
    db_path = root / DB_NAME
    if not db_path.exists():
        if not create:
            raise ArchiveNotFound(
                f"no archive at {root}; create one with 'qex-archive init' "
                "or point --data-dir / $QEX_DATA at an existing one"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot create archive directory {root}: {exc.strerror}") from None
    for sub in (RESULTS_DIR, ARTIFACTS_DIR):
        (root / sub).mkdir(exist_ok=True)
    try:
        conn = connect(db_path)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise ArchiveError(f"{db_path} is not a usable SQLite database ({exc})") from None
    return Archive(root, conn)


@dataclass(frozen=True)
class _PreparedRun:
    row: RunRow
    header: bytes
    data: memoryview  # the matrix's bytes, not copied
    size: int
    sha256: str


class Archive:
    """Runs stored in one archive directory. Use :func:`open_archive` to get one."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn
        self._batch_files: list[Path] | None = None

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def results_dir(self) -> Path:
        return self.root / RESULTS_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.root / ARTIFACTS_DIR

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"

    # -- writing -------------------------------------------------------------------------

    def record(
        self,
        experiment: str,
        *,
        params: Mapping[str, Any] | None = None,
        backend: str,
        state: object,
        metadata: Mapping[str, Any] | None = None,
        timestamp: object = None,
        dims: Sequence[int] | None = None,
        strict: bool = False,
    ) -> Run:
        """Store one run and return it.

        ``state`` is a density matrix (or a state vector, stored as the pure state) as a
        numpy array or nested lists; ``dims`` gives subsystem dimensions for qudits (qubits
        are inferred). A non-physical state is stored and flagged in
        ``run.validation``, or refused with :class:`InvalidState` when ``strict=True``.
        """
        prepared = self._prepare(
            experiment, params, backend, state, metadata, timestamp, dims, strict
        )
        with self._writing():
            self._store(prepared)
        return Run(self, prepared.row)

    @contextmanager
    def batch(self) -> Iterator[Archive]:
        """Record many runs in one transaction: all of them are stored, or none."""
        if self._batch_files is not None:
            yield self
            return
        self._batch_files = []
        try:
            with write_transaction(self.conn):
                yield self
        except BaseException:
            for path in self._batch_files:
                remove_quietly(path)
            raise
        finally:
            self._batch_files = None

    def delete(self, ref: str) -> Run:
        """Remove a run (full ID or unique prefix): its row, artifacts and files."""
        with self._writing():
            run = self.get(ref)
            paths = [run.density_matrix_path]
            paths += [a.relative_path for a in self.artifacts_of(run.run_id)]
            paths += [
                p
                for (p,) in self.conn.execute(
                    "SELECT path FROM qex_files WHERE run_id = ?", (run.run_id,)
                )
            ]
            self.conn.execute("DELETE FROM qex_files WHERE run_id = ?", (run.run_id,))
            self.conn.execute("DELETE FROM artifacts WHERE run_id = ?", (run.run_id,))
            self.conn.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
        # Files go only after the commit: a crash here leaves orphans, never dangling rows.
        if self._batch_files is None:
            for relative in set(paths):
                remove_quietly(self.resolve_path(relative))
        return run

    def _writing(self) -> Any:
        return nullcontext() if self._batch_files is not None else write_transaction(self.conn)

    def _prepare(
        self,
        experiment: object,
        params: object,
        backend: object,
        state: object,
        metadata: object,
        timestamp: object,
        dims: Sequence[int] | None,
        strict: bool,
    ) -> _PreparedRun:
        experiment_name = _check_name(experiment, "experiment name")
        backend_name = _check_name(backend, "backend")
        params_clean = json_object({} if params is None else params, "params")
        user_metadata = json_object({} if metadata is None else metadata, "metadata")
        for key in RESERVED_METADATA_KEYS:
            if key in user_metadata:
                raise InvalidInput(
                    f"metadata key {key!r} is reserved for what qex-archive records; rename it"
                )
        when = time.time() if timestamp is None else to_timestamp(timestamp, "timestamp")

        from .npyfile import header_bytes
        from .physics import validation_summary
        from .states import coerce_state

        archived = coerce_state(state, dims)
        validation = validation_summary(archived.rho)
        if strict and not validation["is_valid"]:
            raise InvalidState(
                "state is not physical (" + "; ".join(validation["findings"]) + "); "
                "pass strict=False to store it flagged"
            )
        rho = archived.rho
        header = header_bytes(rho.shape)
        data = rho.reshape(-1).view("u1").data
        digest = hashlib.sha256(header)
        digest.update(data)
        sha256 = digest.hexdigest()
        run_id = str(uuid.uuid4())
        full_metadata = {
            **user_metadata,
            "state": {
                "dims": archived.dims,
                "ordering": "big_endian",
                "source_ordering": archived.source_ordering,
                "source_kind": archived.source_kind,
                "subsystem_labels": archived.subsystem_labels,
                "dtype": "complex128",
                "shape": list(rho.shape),
                "sha256": sha256,
            },
            "validation": validation,
            "qex": {"version": __version__},
        }
        row: RunRow = (
            run_id,
            experiment_name,
            dumps(params_clean),
            backend_name,
            when,
            f"{RESULTS_DIR}/{run_id}_rho.npy",
            dumps(full_metadata),
        )
        return _PreparedRun(row, header, data, len(header) + data.nbytes, sha256)

    def _store(self, prepared: _PreparedRun) -> None:
        """Write the file, then insert the rows; the caller holds the write transaction."""
        relative = prepared.row[5]
        path = self.resolve_path(relative)
        atomic_write(path, (prepared.header, prepared.data))
        if self._batch_files is not None:
            self._batch_files.append(path)
        try:
            self.conn.execute(
                f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                prepared.row,
            )
            self.conn.execute(
                "INSERT INTO qex_files (path, run_id, size, sha256) VALUES (?, ?, ?, ?)",
                (relative, prepared.row[0], prepared.size, prepared.sha256),
            )
        except BaseException:
            remove_quietly(path)
            raise

    # -- reading -------------------------------------------------------------------------

    def get(self, ref: str) -> Run:
        """The run whose ID is ``ref`` or starts with ``ref`` (which must be unique)."""
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"a run ID must be non-empty text, got {ref!r}")
        ref = ref.strip()
        candidates = [ref] if ref == ref.lower() else [ref, ref.lower()]
        for candidate in candidates:
            row = self.conn.execute(f"{_SELECT_RUNS} WHERE run_id = ?", (candidate,)).fetchone()
            if row:
                return Run(self, row)
            upper = candidate[:-1] + chr(ord(candidate[-1]) + 1)
            rows = self.conn.execute(
                f"{_SELECT_RUNS} WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT 6",
                (candidate, upper),
            ).fetchall()
            if len(rows) == 1:
                return Run(self, rows[0])
            if rows:
                shown = ", ".join(r[0][: len(candidate) + 4] for r in rows[:5])
                more = " and more" if len(rows) > 5 else ""
                raise AmbiguousRunId(
                    f"run ID prefix {candidate!r} matches several runs ({shown}{more}); "
                    "give more characters"
                )
        raise RunNotFound(f"no run with ID or prefix {ref!r}; list runs with 'qex-archive runs'")

    def runs(
        self,
        *,
        experiment: str | None = None,
        backend: str | None = None,
        since: object = None,
        until: object = None,
        where: Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Run]:
        """Runs matching every given criterion, newest first unless ``newest_first=False``.

        ``since``/``until`` take Unix timestamps, datetimes, ISO texts or ages like ``"3d"``;
        ``where`` filters on parameters: ``{"shots": 1024, "theta": {">=": 0.1, "<": 0.5}}``.
        """
        selection = RunFilter.build(
            experiment=experiment, backend=backend, since=since, until=until, where=where
        )
        return self.select(selection, limit=limit, offset=offset, newest_first=newest_first)

    def select(
        self,
        selection: RunFilter,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[Run]:
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
        clause, args = selection.sql()
        direction = "DESC" if newest_first else "ASC"
        sql = (
            f"{_SELECT_RUNS}{clause} ORDER BY timestamp {direction}, run_id {direction} "
            "LIMIT ? OFFSET ?"
        )
        rows = self.conn.execute(sql, [*args, -1 if limit is None else limit, offset])
        return [Run(self, row) for row in rows]

    def count(self, selection: RunFilter | None = None) -> int:
        clause, args = (selection or RunFilter()).sql()
        total: int = self.conn.execute(f"SELECT count(*) FROM runs{clause}", args).fetchone()[0]
        return total

    def artifacts_of(self, run_id: str) -> list[Artifact]:
        rows = self.conn.execute(
            "SELECT artifact_name, artifact_path, artifact_type FROM artifacts "
            "WHERE run_id = ? ORDER BY artifact_id",
            (run_id,),
        )
        return [Artifact(name, rel, media, self.resolve_path(rel)) for name, rel, media in rows]

    def resolve_path(self, relative: str) -> Path:
        """Absolute path of a path stored in the database; refuses any that leaves the archive."""
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts or "\\" in relative:
            raise ArchiveError(f"stored path {relative!r} points outside the archive")
        return self.root.joinpath(*parts)


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{what} is empty; give a name")
    if value != value.strip():
        raise InvalidInput(f"{what} {value!r} has leading or trailing whitespace")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(f"{what} {value!r} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{what} {value!r} is not valid UTF-8 text") from None
    return value


__all__ = ["Archive", "QexError", "open_archive", "resolve_data_dir"]
