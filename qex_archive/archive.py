"""The archive: one directory holding ``qex.db``, ``results/`` and ``artifacts/``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._reading import ArchiveReading
from .errors import InvalidInput, QexError
from .run import Artifact, Run
from .store import tables
from .store.files import PendingFiles, storage_faults
from .store.paths import ARTIFACTS_DIR, DB_NAME, RESULTS_DIR, data_path
from .store.query import RunFilter
from .store.writer import Writer

if TYPE_CHECKING:
    import pluggy

    from ._plugin_calls import PluginCalls
    from .recording.prepare import PreparedFile, PreparedRun
    from .store.connection import Connection

RENDERERS_ENV = "QEX_ARCHIVE_RENDERERS"
# A density matrix this large (9 qubits and up) is flushed on a thread while its run is
# computed; below, flushing every file of the run together at the end is as fast or faster
# (benchmarks/README.md, "Figures behind the code's choices").
EARLY_FLUSH_BYTES = 4 * 1024**2


class Archive(ArchiveReading):
    """Runs stored in one archive directory. Use :func:`open_archive` to get one."""

    def __init__(
        self,
        root: Path,
        conn: Connection,
        *,
        plugins: pluggy.PluginManager | None = None,
        renderers: Sequence[str] | None = None,
        read_only: str | None = None,
    ) -> None:
        self.root = root
        self.writer = Writer(conn, root, read_only=read_only)  # every change goes through it
        self.capture = True  # record each run's context (code, environment)
        self._plugins = plugins
        self._default_renderers = None if renderers is None else list(renderers)

    @property
    def conn(self) -> Connection:
        """The archive's one database connection (the writer's)."""
        return self.writer.conn

    @conn.setter
    def conn(self, conn: Connection) -> None:
        self.writer.conn = conn

    @property
    def read_only(self) -> str | None:
        """Why the archive cannot be written; None when it can."""
        return self.writer.read_only

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
        from ._plugin_calls import PluginCalls

        return PluginCalls(self.plugins)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Archive({str(self.root)!r})"

    def _repr_html_(self) -> str:
        from .views.notebook import archive_html

        return archive_html(self)

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
        attach: Mapping[str, object] | None = None,
        _run_id: str | None = None,
    ) -> Run:
        """Store one run and return it.

        ``state`` is a density matrix or state vector (numpy array or nested lists) or any
        framework object an installed plugin converts; ``dims`` gives subsystem dimensions for
        qudits (qubits are inferred). ``backend`` is a name or a framework backend object,
        described by the installed plugins. ``renderers`` picks the artifacts to make
        (default: all registered, or those given to :func:`open_archive`).

        ``attach`` stores objects with the run as open files (``{"circuit": qc, "counts":
        counts, "calibration": array}``): arrays, JSON data, text and bytes, and whatever an
        installed plugin serializes; an object nobody can store is refused before anything is
        written. ``run.attachment(name)`` gives them back.

        A non-physical state is stored and flagged in ``run.validation``, or refused with
        :class:`InvalidState` when ``strict=True``. A plugin that fails does not stop the
        run from being stored: the failure is kept in ``metadata["qex"]["plugin_errors"]``
        and shown as a :class:`~qex_archive.plugins.PluginWarning`.

        ``_run_id`` is for qex's own code (the demo's fixed IDs): a UUID v4 that no run of the
        archive has; users' runs always get a new random one.
        """
        from .recording.prepare import check_run_id, prepare_run

        self.writer.refuse_read_only("record a run")
        # A given ID (the demo's) may name files a run of that ID, deleted earlier in the same
        # batch, still has: they are written over, and come back if the batch fails.
        replaces = _run_id is not None
        if _run_id is not None:
            self._refuse_taken(check_run_id(_run_id))
        pending = self.writer.files()  # the batch's, or this run's own
        kept = len(pending.paths)
        renderer_names = self._renderer_names(renderers)

        def write_early(file: PreparedFile) -> None:
            # the density matrix, written as soon as it is known (under a temporary name
            # until the write lock is held); a large one is flushed while the run is computed
            with storage_faults("record the run"):
                self._write_files(
                    [file], pending, early=file.size >= EARLY_FLUSH_BYTES, replaces=replaces
                )

        try:
            prepared, problems = prepare_run(
                self._hooks,
                partial(Run.draft, self),
                self.capture,
                experiment,
                params,
                backend,
                state,
                metadata,
                timestamp,
                dims,
                strict,
                renderer_names,
                attach,
                write_early,
                _run_id,
            )
            with self.writer.unit("record the run", pending):
                if replaces:  # again, now that the write lock is held
                    self._refuse_taken(prepared.row[0])
                self._store(prepared, replaces=replaces)
        except BaseException:
            pending.discard(keep=kept)
            raise
        self._hooks.warn(problems)
        return Run(self, prepared.row)

    @contextmanager
    def batch(self) -> Iterator[Archive]:
        """Record many runs in one transaction: all of them are stored, or none. Whatever
        else writes inside it (delete, tag, import, gc) joins the same transaction; an
        operation that fails inside leaves the batch as it was before that operation."""
        self.writer.refuse_read_only("record runs")
        with self.writer.unit("store the batch", many=True, faults=False):
            yield self

    def delete(self, ref: str) -> Run:
        """Remove a run (full ID or unique prefix): its rows, and its files unless another
        run's row refers to the same file."""
        with self.writer.unit("delete the run"):
            run = self.get(ref)
            paths = tables.paths_of_run(self.conn, run.run_id)
            tables.delete_run(self.conn, run.run_id)
            # the files go once the rows are gone: a crash leaves orphans, never dangling rows
            self.writer.remove_after_commit(paths - tables.referenced_among(self.conn, paths))
        return run

    def render(
        self, ref: str, renderers: Sequence[str] | None = None, *, force: bool = False
    ) -> list[Artifact]:
        """Make a stored run's artifacts again: those named, else the ones it has (when their
        renderer is installed), else the default ones.

        The density matrix must match its recorded checksum (``force=True`` renders anyway).
        Each artifact keeps its name (``artifacts/{run_id}_bloch.html``): the new file is
        written under a temporary name, made durable and renamed over the old one, and its row
        updated in the same transaction; if that fails, the old file is put back."""
        import numpy as np

        from .recording.prepare import artifact_files

        if self.writer.active:
            raise QexError("render() cannot run inside batch(); call it after the batch")
        self.writer.refuse_read_only("render artifacts")
        run = self.get(ref)
        if not force:
            run.verify_density_matrix()
        attached = self._own_attachments(run)  # never replaced: they cannot be made again
        if renderers is None:
            existing = [a.name for a in self.artifacts_of(run.run_id)]
            renderers = [
                name for name in existing if name in self._hooks.renderers and name not in attached
            ] or None
        chosen = [name for name in self._renderer_names(renderers) if name not in attached]
        outputs, problems = self._hooks.render(run, np.asarray(run.rho), chosen)
        if problems:
            raise QexError(
                f"cannot render {run.run_id[:8]}: " + "; ".join(p.message for p in problems)
            )
        names = [renderer.name for renderer, _ in outputs]
        files, artifacts = artifact_files(run.run_id, outputs)
        with self.writer.unit("render the artifacts"):
            old = tables.delete_artifacts(self.conn, run.run_id, names)
            targets = [file.relative for file in files]
            taken = tables.referenced_among(self.conn, targets)
            if taken:
                raise QexError(
                    f"cannot render {run.run_id[:8]}: {sorted(taken)[0]} is another row's file; "
                    "run 'qex-archive check' and correct the rows first"
                )
            self._write_files(files, replaces=True)
            self._insert_artifacts(run.run_id, files, artifacts)
            gone = set(old) - set(targets)  # a renderer whose file name changed
            self.writer.remove_after_commit(gone - tables.referenced_among(self.conn, gone))
        return self.artifacts_of(run.run_id)

    def _own_attachments(self, run: Run) -> set[str]:
        """The names ``render`` leaves alone: attachments recorded here (whose names were
        refused when a renderer's). A run from someone's bundle shields nothing by calling a
        page an attachment: what a renderer makes is made again whatever the run claims."""
        if run.provenance is not None:
            return set()
        local = {a.name for a in self.artifacts_of(run.run_id) if not a.foreign}
        return set(run.attachment_names) & local

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

    def _refuse_taken(self, run_id: str) -> None:
        if tables.run_by_id(self.conn, run_id) is not None:
            raise InvalidInput(
                f"cannot record run {run_id}: the archive already has a run of this ID"
            )

    def _store(self, prepared: PreparedRun, *, replaces: bool = False) -> None:
        """Write the files (``replaces``: over files of the same names), then insert the rows;
        the caller holds the write transaction."""
        self._write_files(prepared.files, replaces=replaces)
        tables.insert_runs(self.conn, [prepared.row])
        self._insert_artifacts(prepared.row[0], prepared.files, prepared.artifacts)

    def _write_files(
        self,
        files: Sequence[PreparedFile],
        pending: PendingFiles | None = None,
        *,
        early: bool = False,
        replaces: bool = False,
    ) -> None:
        """Write each file not yet written to ``pending`` (by default the open unit's);
        ``early`` starts flushing them at once (see :class:`PendingFiles`), ``replaces`` writes
        over a file of the same name."""
        pending = pending or self.writer.files()
        for prepared in files:
            path = data_path(self.root, prepared.relative)
            if path in pending:
                continue
            if not path.parent.is_dir():
                path.parent.mkdir()
            pending.write(path, prepared.chunks, early=early, replaces=replaces)

    def _insert_artifacts(
        self, run_id: str, files: Sequence[PreparedFile], artifacts: Sequence[tuple[str, str, str]]
    ) -> None:
        tables.insert_artifacts(
            self.conn, [(run_id, name, relative, media) for name, relative, media in artifacts]
        )
        tables.insert_files(
            self.conn, [(f.relative, run_id, f.size, f.sha256, None) for f in files]
        )

    def tag(
        self,
        runs: RunFilter | Sequence[str],
        tags: Mapping[str, str | None] | None = None,
        *,
        remove: Sequence[str] = (),
    ) -> list[str]:
        """Set ``tags`` on (and take the keys ``remove`` off) the runs a :class:`RunFilter`
        selects, or the runs named by ID or unique prefix, in one transaction; their IDs."""
        from .store.annotations import tag_runs

        if isinstance(runs, RunFilter):
            run_ids = self.run_ids(runs)
        else:
            run_ids = self.run_ids(refs=[runs] if isinstance(runs, str) else list(runs))
        tag_runs(self, run_ids, tags, remove)
        return run_ids

    def resolve_path(self, relative: str) -> Path:
        """Absolute path of a stored path; :class:`~qex_archive.store.paths.ForeignFile` for
        any path that is not one of the archive's own files."""
        return data_path(self.root, relative)
