"""The archive: one directory holding ``qex.db``, ``results/`` and ``artifacts/``."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from .jsonvalues import dumps, json_object, to_json_data
from .migrations import migrate
from .names import check_name
from .query import RunFilter
from .run import RUN_COLUMNS, Artifact, Run, RunRow
from .storage import atomic_write, remove_quietly
from .timeutil import to_timestamp

if TYPE_CHECKING:
    import pluggy

    from .plugin_calls import PluginCalls, PluginProblem

DB_NAME = "qex.db"
RESULTS_DIR = "results"
ARTIFACTS_DIR = "artifacts"
DEFAULT_DIR = "qex_data"
ENV_VAR = "QEX_DATA"
RENDERERS_ENV = "QEX_ARCHIVE_RENDERERS"
RESERVED_METADATA_KEYS = ("state", "validation", "backend", "qex")

_SELECT_RUNS = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"


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
) -> Archive:
    """Open the archive at ``path`` (see :func:`resolve_data_dir`), creating it if missing
    unless ``create=False``, and bring its schema up to date.

    ``plugins`` is a plugin manager to use instead of the installed plugins (see
    :func:`qex_archive.plugins.make_plugin_manager`); ``renderers`` names the artifacts
    ``record`` makes by default (else ``$QEX_ARCHIVE_RENDERERS``, else every renderer).
    """
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
    return Archive(root, conn, plugins=plugins, renderers=renderers)


@dataclass(frozen=True)
class _PreparedFile:
    relative: str
    chunks: tuple[bytes | memoryview, ...]
    size: int
    sha256: str

    @classmethod
    def of(cls, relative: str, *chunks: bytes | memoryview) -> _PreparedFile:
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        return cls(relative, chunks, sum(memoryview(c).nbytes for c in chunks), digest.hexdigest())


@dataclass(frozen=True)
class _PreparedRun:
    row: RunRow
    files: list[_PreparedFile]
    artifacts: list[tuple[str, str, str]]  # name, relative path, media type


class Archive:
    """Runs stored in one archive directory. Use :func:`open_archive` to get one."""

    def __init__(
        self,
        root: Path,
        conn: sqlite3.Connection,
        *,
        plugins: pluggy.PluginManager | None = None,
        renderers: Sequence[str] | None = None,
    ) -> None:
        self.root = root
        self.conn = conn
        self._plugins = plugins
        self._default_renderers = None if renderers is None else list(renderers)
        # Inside batch(): files written (removed if the batch fails) and files of deleted runs
        # (removed once it commits).
        self._batch_files: list[Path] | None = None
        self._batch_removals: list[Path] = []

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def results_dir(self) -> Path:
        return self.root / RESULTS_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.root / ARTIFACTS_DIR

    @property
    def plugins(self) -> pluggy.PluginManager:
        """This archive's plugin manager, built on first use."""
        if self._plugins is None:
            from .plugins import make_plugin_manager

            self._plugins = make_plugin_manager()
        return self._plugins

    @cached_property
    def _hooks(self) -> PluginCalls:
        from .plugin_calls import PluginCalls

        return PluginCalls(self.plugins)

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
        backend: object,
        state: object,
        metadata: Mapping[str, Any] | None = None,
        timestamp: object = None,
        dims: Sequence[int] | None = None,
        strict: bool = False,
        renderers: Sequence[str] | None = None,
    ) -> Run:
        """Store one run and return it.

        ``state`` is a density matrix or state vector (numpy array or nested lists) or any
        framework object an installed plugin converts; ``dims`` gives subsystem dimensions for
        qudits (qubits are inferred). ``backend`` is a name or a framework backend object,
        described by the installed plugins. ``renderers`` picks the artifacts to make
        (default: all registered, or those given to :func:`open_archive`).

        A non-physical state is stored and flagged in ``run.validation``, or refused with
        :class:`InvalidState` when ``strict=True``. A plugin that fails does not stop the
        run from being stored: the failure is kept in ``metadata["qex"]["plugin_errors"]``
        and shown as a :class:`~qex_archive.plugins.PluginWarning`.
        """
        prepared, problems = self._prepare(
            experiment, params, backend, state, metadata, timestamp, dims, strict, renderers
        )
        with self._writing():
            self._store(prepared)
        self._hooks.warn(problems)
        return Run(self, prepared.row)

    @contextmanager
    def batch(self) -> Iterator[Archive]:
        """Record many runs in one transaction: all of them are stored, or none."""
        if self._batch_files is not None:
            yield self
            return
        self._batch_files = []
        self._batch_removals = []
        try:
            with write_transaction(self.conn):
                yield self
        except BaseException:
            for path in self._batch_files:
                remove_quietly(path)
            raise
        else:
            for path in self._batch_removals:
                remove_quietly(path)
        finally:
            self._batch_files = None
            self._batch_removals = []

    def delete(self, ref: str) -> Run:
        """Remove a run (full ID or unique prefix): its row, artifacts and files."""
        with self._writing():
            run = self.get(ref)
            paths = {run.density_matrix_path}
            paths.update(a.relative_path for a in self.artifacts_of(run.run_id))
            paths.update(self._file_paths_of(run.run_id))
            self.conn.execute("DELETE FROM qex_imports WHERE run_id = ?", (run.run_id,))
            self.conn.execute("DELETE FROM qex_files WHERE run_id = ?", (run.run_id,))
            self.conn.execute("DELETE FROM artifacts WHERE run_id = ?", (run.run_id,))
            self.conn.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
        self._remove_after_commit(paths)
        return run

    def _remove_after_commit(self, relative_paths: Iterable[str]) -> None:
        """Files go only after their rows are gone: a crash leaves orphans, never dangling rows."""
        paths = [self.resolve_path(relative) for relative in relative_paths]
        if self._batch_files is not None:
            self._batch_removals.extend(paths)
        else:
            for path in paths:
                remove_quietly(path)

    def render(self, ref: str, renderers: Sequence[str] | None = None) -> list[Artifact]:
        """Make a stored run's artifacts again: those named, else the ones it has (when their
        renderer is installed), else the default ones."""
        import numpy as np

        if self._batch_files is not None:
            # a failed batch would remove the new files, which replace the old ones in place
            raise QexError("render() cannot run inside batch(); call it after the batch")
        run = self.get(ref)
        if renderers is None:
            existing = [a.name for a in self.artifacts_of(run.run_id)]
            renderers = [name for name in existing if name in self._hooks.renderers] or None
        outputs, problems = self._hooks.render(
            run, np.asarray(run.rho), self._renderer_names(renderers)
        )
        if problems:
            raise QexError(
                f"cannot render {run.run_id[:8]}: " + "; ".join(p.message for p in problems)
            )
        names = [renderer.name for renderer, _ in outputs]
        marks = ",".join("?" * len(names))
        # Forget the old artifacts first, then write the new files, then add them: a crash in
        # between leaves orphan files, never a row whose file does not match its checksum.
        with self._writing():
            old = [
                path
                for (path,) in self.conn.execute(
                    "SELECT artifact_path FROM artifacts "
                    f"WHERE run_id = ? AND artifact_name IN ({marks})",
                    (run.run_id, *names),
                )
            ]
            self.conn.execute(
                f"DELETE FROM qex_files WHERE path IN ({','.join('?' * len(old))})", old
            )
            self.conn.execute(
                f"DELETE FROM artifacts WHERE run_id = ? AND artifact_name IN ({marks})",
                (run.run_id, *names),
            )
        files, artifacts = [], []
        for renderer, content in outputs:
            relative = f"{ARTIFACTS_DIR}/{renderer.file_name(run.run_id)}"
            files.append(_PreparedFile.of(relative, content))
            artifacts.append((renderer.name, relative, renderer.media_type))
        with self._writing():
            self._write_files(files)
            self._insert_artifacts(run.run_id, files, artifacts)
        self._remove_after_commit(set(old) - {f.relative for f in files})
        return self.artifacts_of(run.run_id)

    def renderer_names(self) -> list[str]:
        """Names of every registered renderer."""
        return list(self._hooks.renderers)

    def _renderer_names(self, chosen: Sequence[str] | None) -> list[str]:
        available = self._hooks.renderers
        if chosen is None:
            chosen = self._default_renderers
        if chosen is None:
            configured = os.environ.get(RENDERERS_ENV)
            if configured is None:
                return list(available)
            chosen = [name.strip() for name in configured.split(",") if name.strip()]
        if isinstance(chosen, str):
            raise InvalidInput(f"renderers must be a list of names, not the text {chosen!r}")
        for name in chosen:
            if name not in available:
                known = ", ".join(available) or "none"
                raise InvalidInput(f"no renderer named {name!r}; available: {known}")
        return list(dict.fromkeys(chosen))

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
        renderers: Sequence[str] | None,
    ) -> tuple[_PreparedRun, list[PluginProblem]]:
        experiment_name = check_name(experiment, "experiment name")
        backend_name = check_name(_backend_name(backend), "backend")
        params_clean = json_object({} if params is None else params, "params")
        user_metadata = json_object({} if metadata is None else metadata, "metadata")
        for key in RESERVED_METADATA_KEYS:
            if key in user_metadata:
                raise InvalidInput(
                    f"metadata key {key!r} is reserved for what qex-archive records; rename it"
                )
        when = time.time() if timestamp is None else to_timestamp(timestamp, "timestamp")
        renderer_names = self._renderer_names(renderers)

        from .npyfile import header_bytes
        from .states import coerce_state

        hooks = self._hooks
        archived = coerce_state(hooks.convert_state(state), dims)
        rho = archived.rho
        run_id = str(uuid.uuid4())
        rho_file = _PreparedFile.of(
            f"{RESULTS_DIR}/{run_id}_rho.npy",
            header_bytes(rho.shape),
            rho.reshape(-1).view("u1").data,  # the matrix's bytes, not a copy
        )
        backend_info, problems = hooks.backend_metadata(backend, backend_name)
        full_metadata: dict[str, Any] = {
            **user_metadata,
            "state": {
                "dims": archived.dims,
                "ordering": "big_endian",
                "source_ordering": archived.source_ordering,
                "source_kind": archived.source_kind,
                "source_dtype": archived.source_dtype,
                "subsystem_labels": to_json_data(archived.subsystem_labels),
                "dtype": "complex128",
                "shape": list(rho.shape),
                "sha256": rho_file.sha256,
            },
        }
        if backend_info:
            full_metadata["backend"] = backend_info
        full_metadata["qex"] = {"version": __version__, "plugins": hooks.versions}

        params_json = dumps(params_clean)

        def row(metadata_json: str | None = None) -> RunRow:
            return (
                run_id,
                experiment_name,
                params_json,
                backend_name,
                when,
                rho_file.relative,
                metadata_json,
            )

        def draft() -> Run:
            return Run.draft(self, row(), params_clean, full_metadata, rho)

        validation, more = hooks.validate(draft(), rho)
        problems += more
        full_metadata["validation"] = validation
        if strict and not validation.get("is_valid", True):
            raise InvalidState(
                "state is not physical (" + "; ".join(validation["findings"]) + "); "
                "pass strict=False to store it flagged"
            )
        outputs, more = hooks.render(draft(), rho, renderer_names)
        problems += more
        if problems:
            full_metadata["qex"]["plugin_errors"] = [p.to_dict() for p in problems]
        files = [rho_file]
        artifacts = []
        for renderer, content in outputs:
            relative = f"{ARTIFACTS_DIR}/{renderer.file_name(run_id)}"
            files.append(_PreparedFile.of(relative, content))
            artifacts.append((renderer.name, relative, renderer.media_type))
        return _PreparedRun(row(dumps(full_metadata)), files, artifacts), problems

    def _store(self, prepared: _PreparedRun) -> None:
        """Write the files, then insert the rows; the caller holds the write transaction."""
        self._write_files(prepared.files)
        run_id = prepared.row[0]
        self.conn.execute(
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            prepared.row,
        )
        self._insert_artifacts(run_id, prepared.files, prepared.artifacts)

    def _write_files(self, files: Sequence[_PreparedFile]) -> None:
        for prepared in files:
            path = self.resolve_path(prepared.relative)
            atomic_write(path, prepared.chunks)
            if self._batch_files is not None:
                self._batch_files.append(path)

    def _insert_artifacts(
        self, run_id: str, files: Sequence[_PreparedFile], artifacts: Sequence[tuple[str, str, str]]
    ) -> None:
        self.conn.executemany(
            "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
            "VALUES (?, ?, ?, ?)",
            [(run_id, name, relative, media) for name, relative, media in artifacts],
        )
        self.conn.executemany(
            "INSERT INTO qex_files (path, run_id, size, sha256) VALUES (?, ?, ?, ?)",
            [(f.relative, run_id, f.size, f.sha256) for f in files],
        )

    def _file_paths_of(self, run_id: str) -> list[str]:
        rows = self.conn.execute("SELECT path FROM qex_files WHERE run_id = ?", (run_id,))
        return [path for (path,) in rows]

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
        direction = "DESC" if newest_first else "ASC"

        def query(clause: str) -> str:
            return (
                f"{_SELECT_RUNS}{clause} ORDER BY timestamp {direction}, run_id {direction} "
                "LIMIT ? OFFSET ?"
            )

        paging = [-1 if limit is None else limit, offset]
        return [Run(self, row) for row in self._filtered(selection, query, paging)]

    def count(self, selection: RunFilter | None = None) -> int:
        rows = self._filtered(
            selection or RunFilter(), lambda clause: f"SELECT count(*) FROM runs{clause}", []
        )
        total: int = rows[0][0]
        return total

    def _filtered(
        self, selection: RunFilter, query: Callable[[str], str], extra: list[Any]
    ) -> list[Any]:
        clause, args = selection.sql()
        try:
            return self.conn.execute(query(clause), [*args, *extra]).fetchall()
        except sqlite3.OperationalError as exc:
            if "malformed JSON" not in str(exc):
                raise
        clause, args = selection.sql(damaged_json=True)  # a row holds params that are not JSON
        return self.conn.execute(query(clause), [*args, *extra]).fetchall()

    def artifacts_by_run(self, run_ids: Sequence[str]) -> dict[str, list[Artifact]]:
        """Artifacts of many runs, a few queries for all of them."""
        found: dict[str, list[Artifact]] = {run_id: [] for run_id in run_ids}
        ids = list(found)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.conn.execute(
                "SELECT a.run_id, a.artifact_name, a.artifact_path, a.artifact_type, f.origin "
                "FROM artifacts a LEFT JOIN qex_files f ON f.path = a.artifact_path "
                f"WHERE a.run_id IN ({','.join('?' * len(chunk))}) ORDER BY a.artifact_id",
                chunk,
            )
            for run_id, name, relative, media, origin in rows:
                path = self.resolve_path(relative)
                found[run_id].append(Artifact(name, relative, media, path, origin))
        return found

    def artifacts_of(self, run_id: str) -> list[Artifact]:
        return self.artifacts_by_run([run_id])[run_id]

    def provenance_of(self, run_id: str) -> dict[str, Any] | None:
        """Where an imported run came from (bundle ID and checksum, file name, when)."""
        row = self.conn.execute(
            "SELECT bundle_id, bundle_sha256, source_name, imported_at FROM qex_imports "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        return {
            "bundle_id": row[0],
            "bundle_sha256": row[1],
            "source_name": row[2],
            "imported_at": row[3],
        }

    def resolve_path(self, relative: str) -> Path:
        """Absolute path of a path stored in the database; refuses any that leaves the archive."""
        return self.root / checked_relative(relative)


def checked_relative(relative: str) -> str:
    """A path from the database, refused if it could lead outside the archive."""
    parts = relative.split("/")
    if not relative or relative.startswith("/") or "\\" in relative or ".." in parts:
        raise ArchiveError(f"stored path {relative!r} points outside the archive")
    return relative


def _backend_name(backend: object) -> object:
    """A backend's name: the text itself, or the object's ``name`` (attribute or method)."""
    if isinstance(backend, str) or backend is None:
        return backend
    name = getattr(backend, "name", None)
    if callable(name):
        name = name()
    return name if isinstance(name, str) and name.strip() else type(backend).__name__


__all__ = ["Archive", "QexError", "open_archive", "resolve_data_dir"]
