"""The archive: one directory holding ``qex.db``, ``results/`` and ``artifacts/``."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    AmbiguousRunId,
    InvalidInput,
    QexError,
    ReadOnlyArchive,
    RunNotFound,
)
from .query import RunFilter
from .run import Artifact, Run
from .store import tables
from .store.files import PendingFiles, storage_faults
from .store.paths import (
    ARTIFACTS_DIR,
    DB_NAME,
    RESULTS_DIR,
    data_path,
    remove_data_file,
)

if TYPE_CHECKING:
    import pluggy

    from .plugin_calls import PluginCalls
    from .recording.prepare import PreparedFile, PreparedRun
    from .selection import Selection

RENDERERS_ENV = "QEX_ARCHIVE_RENDERERS"
# A density matrix this large (9 qubits and up) is flushed on a thread while its run is
# computed: 10 qubits (16 MiB), 251 against 265 ms a record; below, flushing every file of the
# run together at the end is as fast or faster (6 qubits: 1.73 against 2.10 ms).
EARLY_FLUSH_BYTES = 4 * 1024**2
MAX_SQL_INTEGER = 2**63 - 1


class Archive:
    """Runs stored in one archive directory. Use :func:`open_archive` to get one."""

    def __init__(
        self,
        root: Path,
        conn: sqlite3.Connection,
        *,
        plugins: pluggy.PluginManager | None = None,
        renderers: Sequence[str] | None = None,
        read_only: str | None = None,
    ) -> None:
        self.root = root
        self.conn = conn
        self.read_only = read_only  # why the archive cannot be written; None when it can
        self.capture = True  # record each run's context (code, environment)
        self._plugins = plugins
        self._default_renderers = None if renderers is None else list(renderers)
        # Files written by the current transaction (removed if it fails); inside batch(), the
        # files of deleted runs too (removed once it commits).
        self._written: PendingFiles | None = None
        self._in_batch = False
        self._batch_removals: list[str] = []

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
        """
        from .recording.prepare import prepare_run

        self._refuse_read_only("record a run")
        pending = self._written or PendingFiles()  # the batch's, or this run's own
        kept = len(pending.paths)
        renderer_names = self._renderer_names(renderers)

        def write_early(file: PreparedFile) -> None:
            # the density matrix, written as soon as it is known (under a temporary name
            # until the write lock is held); a large one is flushed while the run is computed
            with storage_faults("record the run"):
                self._write_files([file], pending, early=file.size >= EARLY_FLUSH_BYTES)

        try:
            prepared, problems = prepare_run(
                self,
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
            )
            with self._writing("record the run", pending):
                self._store(prepared)
        except BaseException:
            pending.discard(keep=kept)
            raise
        self._hooks.warn(problems)
        return Run(self, prepared.row)

    @contextmanager
    def batch(self) -> Iterator[Archive]:
        """Record many runs in one transaction: all of them are stored, or none."""
        if self._in_batch:
            yield self
            return
        self._refuse_read_only("record runs")
        self._in_batch = True
        self._batch_removals = []
        try:
            with self._transaction("store the batch", PendingFiles(gathered=True)):
                yield self
            for relative in self._batch_removals:
                remove_data_file(self.root, relative)
        finally:
            self._in_batch = False
            self._batch_removals = []

    def delete(self, ref: str) -> Run:
        """Remove a run (full ID or unique prefix): its rows, and its files unless another
        run's row refers to the same file."""
        with self._writing("delete the run"):
            run = self.get(ref)
            paths = tables.paths_of_run(self.conn, run.run_id)
            tables.delete_run(self.conn, run.run_id)
            unwanted = paths - tables.referenced_among(self.conn, paths)
        self._remove_after_commit(unwanted)
        return run

    def _remove_after_commit(self, relative_paths: Iterable[str]) -> None:
        """Files go only after their rows are gone: a crash leaves orphans, never dangling rows."""
        if self._in_batch:
            self._batch_removals.extend(relative_paths)
        else:
            for relative in relative_paths:
                remove_data_file(self.root, relative)

    def render(
        self, ref: str, renderers: Sequence[str] | None = None, *, force: bool = False
    ) -> list[Artifact]:
        """Make a stored run's artifacts again: those named, else the ones it has (when their
        renderer is installed), else the default ones.

        The density matrix must match its recorded checksum (``force=True`` renders anyway).
        New files get new names and the rows switch to them in one transaction, so a crash
        leaves either the old artifacts or the new ones, plus at most orphan files."""
        import numpy as np

        from .recording.prepare import artifact_files

        if self._in_batch:
            raise QexError("render() cannot run inside batch(); call it after the batch")
        self._refuse_read_only("render artifacts")
        run = self.get(ref)
        if not force:
            run.verify_density_matrix()
        attached = set(run.attachment_names)  # never replaced: they cannot be made again
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
        with self._writing("render the artifacts"):
            taken = frozenset(path for path, _ in tables.references(self.conn))
            files, artifacts = artifact_files(run.run_id, outputs, taken)
            self._write_files(files)
            old = tables.delete_artifacts(self.conn, run.run_id, names)
            self._insert_artifacts(run.run_id, files, artifacts)
            unwanted = set(old) - tables.referenced_among(self.conn, old)
        self._remove_after_commit(unwanted)
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

    def _refuse_read_only(self, action: str) -> None:
        if self.read_only:
            raise ReadOnlyArchive(
                f"cannot {action}: the archive at {self.root} is read-only ({self.read_only}); "
                "reading commands still work"
            )

    @contextmanager
    def _writing(self, action: str, pending: PendingFiles | None = None) -> Iterator[None]:
        """One write transaction (or the enclosing batch's), adding to ``pending`` the files
        already written for it. On any failure the rows are rolled back and the files written
        here removed; disk and database faults become one line."""
        self._refuse_read_only(action)
        if not self._in_batch:
            with self._transaction(action, pending or PendingFiles()), storage_faults(action):
                yield
            return
        # inside a batch, an operation that fails leaves the batch as it was before it
        batch_files = self._written
        assert batch_files is not None
        kept = len(batch_files.paths)
        with storage_faults(action):
            self.conn.execute("SAVEPOINT qex_operation")
        try:
            with storage_faults(action):
                yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK TO qex_operation")
                self.conn.execute("RELEASE qex_operation")
            batch_files.discard(keep=kept)
            raise
        with storage_faults(action):
            self.conn.execute("RELEASE qex_operation")

    @contextmanager
    def _transaction(self, action: str, pending: PendingFiles) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, the ``pending`` files made durable before the COMMIT;
        if anything fails, ROLLBACK and remove them."""
        try:
            with storage_faults(action):
                self.conn.execute("BEGIN IMMEDIATE")
                pending.publish()  # files written before the lock was held get their names
            self._written = pending
            yield
            with storage_faults(action):
                # the files, written without fsync, reach the disk before the rows that name them
                pending.flush()
                self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")
            pending.discard()
            raise
        finally:
            self._written = None

    def _store(self, prepared: PreparedRun) -> None:
        """Write the files, then insert the rows; the caller holds the write transaction."""
        self._write_files(prepared.files)
        tables.insert_runs(self.conn, [prepared.row])
        self._insert_artifacts(prepared.row[0], prepared.files, prepared.artifacts)

    def _write_files(
        self,
        files: Sequence[PreparedFile],
        pending: PendingFiles | None = None,
        early: bool = False,
    ) -> None:
        """Write each file not yet written to ``pending`` (by default the transaction's);
        ``early`` starts flushing them at once (see :class:`PendingFiles`)."""
        pending = pending or self._written
        assert pending is not None, "files are written for a write transaction"
        for prepared in files:
            path = data_path(self.root, prepared.relative)
            if path in pending:
                continue
            if not path.parent.is_dir():
                path.parent.mkdir()
            pending.write(path, prepared.chunks, early=early)

    def _insert_artifacts(
        self, run_id: str, files: Sequence[PreparedFile], artifacts: Sequence[tuple[str, str, str]]
    ) -> None:
        tables.insert_artifacts(
            self.conn, [(run_id, name, relative, media) for name, relative, media in artifacts]
        )
        tables.insert_files(
            self.conn, [(f.relative, run_id, f.size, f.sha256, None) for f in files]
        )

    # -- reading -------------------------------------------------------------------------

    def get(self, ref: str) -> Run:
        """The run whose ID is ``ref`` or starts with ``ref`` (which must be unique)."""
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"a run ID must be non-empty text, got {ref!r}")
        ref = ref.strip()
        if not ref.isprintable() or not _is_utf8(ref):
            raise InvalidInput(f"{ref!r} is not a run ID; IDs are like 3f2a91bc-...")
        candidates = [ref] if ref == ref.lower() else [ref, ref.lower()]
        for candidate in candidates:
            row = tables.run_by_id(self.conn, candidate)
            if row:
                return Run(self, row)
            rows = tables.runs_with_prefix(self.conn, candidate, 6)
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
        where: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        meta: Mapping[str, Any] | None = None,
        valid: bool | None = None,
        tags: Mapping[str, str | None] | None = None,
        sort: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
    ) -> Selection:
        """Runs matching every given criterion, newest first (``newest_first=False``: oldest
        first), or sorted by ``sort``; a :class:`~qex_archive.selection.Selection` (a list of
        runs with ``to_pandas()``, ``rhos()`` and ``to_xarray()``).

        ``since``/``until`` take Unix timestamps, datetimes, ISO texts or ages like ``"3d"``;
        ``where`` filters on parameters: ``{"shots": {"in": [1024, 2048]}, "theta": {">=":
        0.1}}`` (a list of such dicts: any of them); ``meta`` on the metadata by dotted path:
        ``{"validation.purity": {">=": 0.9}, "state.dims": [2, 2]}``; ``valid=True`` keeps
        physical states, ``False`` flagged ones; ``tags={"figure": "3", "calibration": None}``
        keeps runs with those tags (None: any value). ``sort`` is ``"time"``, ``"experiment"``,
        ``"backend"``, ``"purity"``, ``"entropy"`` or a parameter name, ascending unless
        ``reverse``; runs without that value come last.
        """
        selection = RunFilter.build(
            experiment=experiment,
            backend=backend,
            since=since,
            until=until,
            where=where,
            meta=meta,
            valid=valid,
            tags=tags,
        )
        if sort is None and not newest_first:
            reverse = not reverse
        return self.select(selection, limit=limit, offset=offset, sort=sort, reverse=reverse)

    def select(
        self,
        selection: RunFilter,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
        sort: str | None = None,
        reverse: bool = False,
    ) -> Selection:
        from .selection import Selection

        batches = self.iter_runs(
            selection,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
            sort=sort,
            reverse=reverse,
        )
        return Selection(self, (run for batch in batches for run in batch))

    def iter_runs(
        self,
        selection: RunFilter,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
        sort: str | None = None,
        reverse: bool = False,
        batch: int = 1000,
    ) -> Iterator[list[Run]]:
        """The runs :meth:`select` finds, ``batch`` at a time, read as they are asked for:
        writing out a million runs takes the memory of one batch."""
        from .query import order_by

        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
        if sort is None and not newest_first:
            reverse = not reverse
        order_by(sort, reverse)  # refuses a bad sort key before any query
        # SQLite integers stop at 2**63 - 1; nobody has that many runs
        paging = [
            -1 if limit is None or limit > MAX_SQL_INTEGER else limit,
            min(offset, MAX_SQL_INTEGER),
        ]
        wanted = None if limit is None else limit + offset
        rare = tables.rare_tags(self.conn, selection.tags, wanted)
        return self._run_batches(selection, rare, sort, reverse, paging, batch)

    def _run_batches(
        self,
        selection: RunFilter,
        rare_tags: set[tuple[str, str | None]],
        sort: str | None,
        reverse: bool,
        paging: list[int],
        batch: int,
    ) -> Iterator[list[Run]]:
        from .query import order_by

        given = 0
        for damaged_json in (False, True):
            where, args = selection.sql(damaged_json=damaged_json, rare_tags=rare_tags)
            order = order_by(sort, reverse, damaged_json=damaged_json)
            skip = given
            try:
                for rows in tables.select_runs(self.conn, where, order, [*args, *paging], batch):
                    # After a row of JSON that is not JSON (written by another tool) stopped
                    # the query, it is asked again so that such rows match nothing; the runs
                    # before that row come again in the same order, and are not given twice.
                    dropped = min(skip, len(rows))
                    skip -= dropped
                    if dropped < len(rows):
                        given += len(rows) - dropped
                        yield [Run(self, row) for row in rows[dropped:]]
                return
            except sqlite3.OperationalError as exc:
                if damaged_json or "malformed JSON" not in str(exc):
                    raise

    def run_ids(self, selection: RunFilter) -> list[str]:
        """IDs of the runs matching ``selection``, sorted (no run is read: for a million)."""
        ids: list[str] = self._filtered(
            selection, lambda where, args, damaged: tables.select_run_ids(self.conn, where, args)
        )
        return ids

    def count(self, selection: RunFilter | None = None) -> int:
        total: int = self._filtered(
            selection or RunFilter(),
            lambda where, args, damaged: tables.count_runs(self.conn, where, args),
        )
        return total

    def unknown_keys(self, selection: RunFilter) -> list[str]:
        """Hints for a selection that matched nothing: each parameter it names that no run of
        the rest of the selection has, with the keys those runs do have."""
        hints = []
        base_where, base_args = selection.base().sql(damaged_json=True)
        for key in selection.keys("params"):
            if not tables.any_run_has_param(self.conn, base_where, base_args, key):
                seen = tables.param_keys(self.conn, base_where, base_args, limit=1000)
                shown = ", ".join(seen[:20]) + (" ..." if len(seen) > 20 else "")
                hints.append(f"no run has param {key!r}; keys seen: {shown or 'none'}")
        return hints

    def _filtered(
        self,
        selection: RunFilter,
        query: Callable[[str, list[Any], bool], Any],
        wanted: int | None = None,
    ) -> Any:
        """``query(where, args, damaged_json)`` for the selection (``wanted``: how many of the
        matching runs the query reads, ``None`` for all)."""
        rare = tables.rare_tags(self.conn, selection.tags, wanted)
        where, args = selection.sql(rare_tags=rare)
        try:
            return query(where, args, False)
        except sqlite3.OperationalError as exc:
            if "malformed JSON" not in str(exc):
                raise
        # a row holds JSON that is not JSON
        where, args = selection.sql(damaged_json=True, rare_tags=rare)
        return query(where, args, True)

    def artifacts_by_run(self, run_ids: Sequence[str]) -> dict[str, list[Artifact]]:
        """Artifacts of many runs, a few queries for all of them."""
        found: dict[str, list[Artifact]] = {run_id: [] for run_id in run_ids}
        for run_id, name, relative, media, origin in tables.artifact_rows(self.conn, list(found)):
            found[run_id].append(Artifact(name, relative, media, self.root / relative, origin))
        return found

    def artifacts_of(self, run_id: str) -> list[Artifact]:
        return self.artifacts_by_run([run_id])[run_id]

    def provenance_of(self, run_id: str) -> dict[str, Any] | None:
        """Where an imported run came from (bundle ID and checksum, file name, when)."""
        return tables.provenance(self.conn, [run_id]).get(run_id)

    def prefetch(self, runs: Sequence[Run]) -> None:
        """Read the artifacts and provenance of many runs in a few queries, not two per run
        (``runs --json`` of thousands of runs)."""
        ids = [run.run_id for run in runs]
        artifacts = self.artifacts_by_run(ids)
        imported = tables.provenance(self.conn, ids)
        tags = tables.tags_by_run(self.conn, ids)
        notes = tables.notes_by_run(self.conn, ids)
        for run in runs:
            run.__dict__["artifacts"] = artifacts[run.run_id]
            run.__dict__["provenance"] = imported.get(run.run_id)
            run.__dict__["prefetched_tags"] = tags[run.run_id]
            run.__dict__["prefetched_notes"] = notes[run.run_id]

    def resolve_path(self, relative: str) -> Path:
        """Absolute path of a stored path; :class:`~qex_archive.store.paths.ForeignFile` for
        any path that is not one of the archive's own files."""
        return data_path(self.root, relative)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
