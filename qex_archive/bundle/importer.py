"""Bringing a verified bundle into an archive: stage, check conflicts, then one transaction.

All or nothing under any failure: the payload is verified while it is staged in
``.staging/`` (never by the ZIP's own names), then, under the write lock, the staged files
are renamed into place and the rows inserted; if anything at all fails from there on, the
files moved are removed again and the transaction is rolled back. A failure of the disk or the
database is reported as such, never blamed on the bundle.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jsonvalues import DAMAGED, stored_json
from ..errors import ArchiveError, InvalidInput, SinkError
from ..store import annotation_tables, tables
from ..store.files import PendingFiles, StagingDirectory, storage_faults
from ..store.integrity import STAGING_DIR
from ..store.paths import DataPaths
from ..store.query import RunFilter
from .description import ImportRows, rows_of, source_name_of
from .format import CONFLICT, BundleError, Limits
from .reader import BundleContents, read_bundle

if TYPE_CHECKING:
    from ..archive import Archive
    from ..store.scratch import ScratchSelection

CONFLICT_POLICIES = ("error", "skip")


@dataclass
class ImportReport:
    bundle_id: str
    bundle_sha256: str
    imported: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    dry_run: bool = False
    # for runs already here: tags and notes the bundle adds, and tags whose value differs
    # (the local value is kept: an import never overwrites what is here)
    tags_added: list[tuple[str, str, str]] = field(default_factory=list)
    notes_added: list[tuple[str, float, str]] = field(default_factory=list)
    tag_conflicts: list[tuple[str, str, str, str]] = field(default_factory=list)
    # runs of the bundle the selection does not match: left out (their files stay out too)
    not_selected: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle_id,
            "bundle_sha256": self.bundle_sha256,
            "imported": self.imported,
            "already_present": self.identical,
            "conflicts_skipped": self.conflicts,
            "dry_run": self.dry_run,
            "tags_added": [list(row) for row in self.tags_added],
            "notes_added": [list(row) for row in self.notes_added],
            "tag_conflicts": [
                {"run_id": r, "tag": k, "here": here, "bundle": theirs}
                for r, k, here, theirs in self.tag_conflicts
            ],
            "not_selected": self.not_selected,
        }


def import_bundle(
    archive: Archive,
    path: str | os.PathLike[str],
    *,
    on_conflict: str = "error",
    dry_run: bool = False,
    limits: Limits | None = None,
    progress: Callable[[int], None] | None = None,
    storage_options: dict[str, Any] | None = None,
    selection: RunFilter | None = None,
) -> ImportReport:
    """Merge the runs of a bundle into ``archive``, keeping their run IDs; ``path`` may be a
    URL (see :mod:`qex_archive.remote.transfer`).

    ``selection`` imports only the bundle's runs it matches, as :meth:`Archive.runs` would
    select them were they in the archive (the whole bundle is still verified; the runs left
    out are listed in the report's ``not_selected``, and their files are not imported).

    Everything is verified before the archive is touched. Runs already present with the same
    content are left alone (importing a bundle twice changes nothing); a run ID present with
    other content is a conflict: nothing is imported unless ``on_conflict="skip"``.

    ``progress(n)`` is told of the bundle file's bytes as they are verified (adding up to its
    size), then of those of its ``qex-bundle.json`` as the runs are read again to be
    inserted; a ``progress`` with an ``extend(n)`` method is told of those ``n`` more bytes
    when that second pass begins.
    """
    if on_conflict not in CONFLICT_POLICIES:
        raise InvalidInput(
            f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}, not {on_conflict!r}"
        )
    if selection is not None and not isinstance(selection, RunFilter):
        raise InvalidInput(f"selection must be a RunFilter, not {type(selection).__name__}")
    if selection == RunFilter():
        selection = None  # every run: no need to ask
    from ..remote.transfer import fetched

    with fetched(path, storage_options, max_size=(limits or Limits()).max_total_size) as local:
        report = _import_local(archive, local, on_conflict, dry_run, limits, progress, selection)
    return report


def _import_local(
    archive: Archive,
    path: Path,
    on_conflict: str,
    dry_run: bool,
    limits: Limits | None,
    progress: Callable[[int], None] | None,
    selection: RunFilter | None = None,
) -> ImportReport:
    if dry_run:
        contents = read_bundle(path, limits, progress=progress)
        report = _Merge(
            archive, contents, on_conflict, progress=progress, selection=selection
        ).run()
        report.dry_run = True
        _refuse_conflicts(report, on_conflict, dry_run=True)
        return report
    archive.writer.refuse_read_only("import a bundle")
    with _staging_dir(archive) as staging:
        contents = _stage(staging, path, limits, progress)
        merge = _Merge(
            archive,
            contents,
            on_conflict,
            staging,
            source_name_of(path),
            progress=progress,
            selection=selection,
        )
        # one write unit (inside a batch, a part of it): if it fails, the rows are rolled
        # back and the files moved into place removed
        with archive.writer.unit("import the bundle") as files:
            merge.files = files
            report = merge.run()
            _refuse_conflicts(report, on_conflict, dry_run=False)
    return report


def _stage(
    staging: Path,
    path: str | os.PathLike[str],
    limits: Limits | None,
    progress: Callable[[int], None] | None,
) -> BundleContents:
    """Verify the bundle while its payload is written to ``staging`` and made durable."""
    with storage_faults("stage the bundle's files"):
        staged = StagingDirectory(staging)
    try:
        with staged:
            # Member names were matched against the whitelist: the staged names are qex's own.
            contents = read_bundle(
                path,
                limits,
                sink=lambda member: staged.create(_staged_name(member.removeprefix("data/"))),
                progress=progress,
            )
            with storage_faults("stage the bundle's files"):
                staged.sync()
    except SinkError as exc:
        with storage_faults("stage the bundle's files"):
            raise exc.cause from None
    return contents


@contextmanager
def _staging_dir(archive: Archive) -> Iterator[Path]:
    root = archive.root / STAGING_DIR
    created_root = False
    with storage_faults("create a staging directory"):
        if not os.path.lexists(root):
            with contextlib.suppress(FileExistsError):  # another import may create it first
                root.mkdir()
                created_root = True
        staging = root / f"import-{os.getpid()}-{secrets.token_hex(6)}"
        staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created_root:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if no other import is using it


class _Merge:
    """The runs of a verified bundle, read again in batches: each compared with the run of the
    same ID here (new, identical or a conflict), and, given the ``staging`` directory, the new
    ones moved into place and inserted (the caller holds the transaction)."""

    BATCH = 1000
    BATCH_BYTES = 8 << 20  # of the runs' JSON text (params, metadata, tags, notes)

    def __init__(
        self,
        archive: Archive,
        contents: BundleContents,
        on_conflict: str,
        staging: Path | None = None,
        source: str = "",
        *,
        progress: Callable[[int], None] | None = None,
        selection: RunFilter | None = None,
    ) -> None:
        self.archive, self.contents, self.on_conflict = archive, contents, on_conflict
        self.selection = selection
        self.staging, self.source, self.progress = staging, source, progress
        self.report = ImportReport(contents.bundle_id, contents.sha256)
        self.files: PendingFiles | None = None  # the write unit's, to which moved files belong
        self.targets = DataPaths(archive.root, create=True)
        self.now = time.time()
        self._merged: list[str] = []  # runs here the bundle meets for the first time

    def run(self) -> ImportReport:
        with contextlib.ExitStack() as stack:
            if self.selection is not None:
                from ..store.scratch import ScratchSelection

                self.scratch = stack.enter_context(ScratchSelection(self.selection))
            self._run()
        return self.report

    scratch: ScratchSelection | None = (
        None  # the selection, asked of each batch of the bundle's runs
    )

    def _run(self) -> None:
        """The runs, a batch at a time: each run's record turned into its rows as it is read
        (the parsed record, several times the size of its text, is not kept), and a batch
        ended at :attr:`BATCH` runs or :attr:`BATCH_BYTES` of their text, whichever comes
        first, so a bundle of large records is imported in the memory of a few."""
        batch: list[ImportRows] = []
        held = 0
        extend = getattr(self.progress, "extend", None)
        if extend is not None:
            extend(self.contents.description_bytes)
        bundle_id = self.contents.bundle_id
        for run in self.contents.iter_runs(self.progress):
            rows = rows_of(run, bundle_id)
            del run
            batch.append(rows)
            held += _text_size(rows)
            if len(batch) >= self.BATCH or held >= self.BATCH_BYTES:
                self._batch(self._selected(batch))
                batch, held = [], 0
        if batch:
            self._batch(self._selected(batch))

    def _selected(self, runs: list[ImportRows]) -> list[ImportRows]:
        """The runs the selection matches, judged by the rows importing them would insert;
        the others are noted in the report as left out."""
        if self.scratch is None:
            return runs
        chosen = self.scratch.matching(
            [row for rows in runs for row in rows.runs], (t for rows in runs for t in rows.tags)
        )
        self.report.not_selected.extend(
            _run_id(rows) for rows in runs if _run_id(rows) not in chosen
        )
        return [rows for rows in runs if _run_id(rows) in chosen]

    def _batch(self, runs: list[ImportRows]) -> None:
        report = self.report
        new, present = ImportRows(), ImportRows()
        for rows in runs:
            verdict = self._compare(rows)
            if verdict is not None:
                (report.identical if verdict else report.conflicts).append(_run_id(rows))
                if verdict:
                    present.extend(rows)
                continue
            report.imported.append(_run_id(rows))
            new.extend(rows)
        self._plan_annotations(present)
        if self.staging is None or (report.conflicts and self.on_conflict == "error"):
            return  # a dry run; or the import is refused at the end: no use writing more
        self._move_into_place(new)
        self._insert(new)

    def _insert(self, new: ImportRows) -> None:
        report, bundle_id = self.report, self.contents.bundle_id
        conn = self.archive.conn
        tables.insert_runs(conn, new.runs)
        tables.insert_artifacts(conn, new.artifacts)
        tables.insert_files(conn, new.files)
        annotation_tables.set_tags(conn, new.tags)
        annotation_tables.add_notes(conn, new.notes)
        note = self.contents.description.get("note")
        tables.insert_imports(
            conn,
            [
                (row[0], bundle_id, report.bundle_sha256, self.source, self.now, note)
                for row in new.runs
            ],
        )
        annotation_tables.set_tags(conn, report.tags_added[self._tags_done :])
        annotation_tables.add_notes(conn, report.notes_added[self._notes_done :])
        tables.insert_bundle_merges(conn, ((run_id, bundle_id) for run_id in self._merged))
        self._tags_done, self._notes_done = len(report.tags_added), len(report.notes_added)
        self._merged.clear()

    _tags_done = _notes_done = 0  # how many of the report's added tags and notes are written

    def _compare(self, rows: ImportRows) -> bool | None:
        """``None`` for a run not here; else whether the one here has the same content (the
        JSON columns compared as values: the same text, or text that parses to the same)."""
        conn = self.archive.conn
        run_id, experiment, params, backend, timestamp, _, metadata = rows.runs[0]
        existing = tables.run_by_id(conn, run_id)
        if existing is None:
            return None
        _, here_experiment, here_params, here_backend, here_time, rho_path, here_meta = existing
        return bool(
            here_experiment == experiment
            and _same_json(here_params, params)
            and here_backend == backend
            and here_time == timestamp
            and (
                (here_meta is None or stored_json(here_meta) is None)
                if metadata is None
                else here_meta is not None and _same_json(here_meta, metadata)
            )
            and tables.rho_checksum(conn, run_id, rho_path) == rows.files[0][3]
        )

    def _plan_annotations(self, rows: ImportRows) -> None:
        """Tags and notes of runs already here: merged, never overwritten, and only from a
        bundle that has not met the run before (imported it, or merged into it): what was
        removed or edited here since stays so when the same bundle is imported again."""
        if not rows.runs:
            return
        ids = [row[0] for row in rows.runs]
        conn = self.archive.conn
        met = tables.bundle_met(conn, ids, self.contents.bundle_id)
        here_tags = annotation_tables.tags_by_run(conn, ids)
        here_notes = annotation_tables.notes_by_run(conn, ids)
        report = self.report
        self._merged.extend(run_id for run_id in ids if run_id not in met)
        for run_id, key, value in rows.tags:
            local = here_tags[run_id].get(key)
            if local is None:
                if run_id not in met:
                    report.tags_added.append((run_id, key, value))
            elif local != value:
                report.tag_conflicts.append((run_id, key, local, value))
        for run_id, created, text in rows.notes:
            if run_id in met:
                continue
            known = {(note["created"], note["text"]) for note in here_notes[run_id]}
            if (created, text) not in known:
                report.notes_added.append((run_id, created, text))

    def _move_into_place(self, rows: ImportRows) -> None:
        """Rename staged files to their final names (same file system, so atomic), as files
        of the write unit: their names are made durable before it commits, and they are
        removed if it fails."""
        assert self.staging is not None and self.files is not None
        paths = [path for path, *_ in rows.files]
        taken = tables.referenced_among(self.archive.conn, paths)
        if taken:
            raise ArchiveError(
                f"{sorted(taken)[0]} is already referenced by a row of this archive; "
                "run 'qex-archive check' and correct the rows before importing"
            )
        staging = os.fspath(self.staging)
        for path in paths:
            target = self.targets(path)
            os.replace(os.path.join(staging, _staged_name(path)), target)
            self.files.adopt(Path(target))


def _refuse_conflicts(report: ImportReport, on_conflict: str, *, dry_run: bool) -> None:
    if report.conflicts and on_conflict == "error":
        shown = ", ".join(report.conflicts[:10]) + (" ..." if len(report.conflicts) > 10 else "")
        verb = "would import" if dry_run else "imported"
        raise BundleError(
            CONFLICT,
            f"{len(report.conflicts)} run ID(s) exist here with different content: {shown}; "
            f"nothing {verb}; pass --on-conflict skip to import the others",
        )


def _run_id(rows: ImportRows) -> str:
    return rows.runs[0][0]


def _text_size(rows: ImportRows) -> int:
    """About the bytes a run's rows hold: its JSON columns, tags and notes."""
    (run,) = rows.runs
    size = len(run[2]) + len(run[6] or "") + 200 * (len(rows.files) + 1)
    size += sum(len(key) + len(value) for _, key, value in rows.tags)
    return size + sum(len(text) + 50 for _, _, text in rows.notes)


def _same_json(stored: object, text: str) -> bool:
    """Whether a stored JSON column holds the value of the canonical JSON ``text``."""
    if stored == text:
        return True
    here = stored_json(stored)
    return here is not DAMAGED and here == json.loads(text)


def _staged_name(relative: str) -> str:
    """``results/X`` -> ``results-X``: a results file and an artifact may share a base name."""
    return relative.replace("/", "-")
