"""Reading an archive: finding runs by ID or prefix, selecting them with a RunFilter, and
what many runs need at once (artifacts, provenance, tags, notes) in a few queries. The half of
:class:`~qex_archive.archive.Archive` that never writes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ._jsonvalues import is_text
from .errors import AmbiguousRunId, InvalidInput, RunNotFound
from .run import Artifact, Run
from .store import annotation_tables, selecting, tables
from .store.query import RunFilter

if TYPE_CHECKING:
    from .archive import Archive
    from .selection import Selection
    from .store.connection import Connection


class ArchiveReading:
    """What an archive answers without writing; :class:`~qex_archive.archive.Archive` is one."""

    root: Path

    @property
    def conn(self) -> Connection:
        raise NotImplementedError  # the archive's own connection

    @property
    def _facade(self) -> Archive:
        """This archive, as the runs it gives out know it."""
        return cast("Archive", self)

    def get(self, ref: str) -> Run:
        """The run whose ID is ``ref`` or starts with ``ref`` (which must be unique)."""
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput(f"a run ID must be non-empty text, got {ref!r}")
        ref = ref.strip()
        if not ref.isprintable() or not is_text(ref):
            raise InvalidInput(f"{ref!r} is not a run ID; IDs are like 3f2a91bc-...")
        candidates = [ref] if ref == ref.lower() else [ref, ref.lower()]
        for candidate in candidates:
            row = tables.run_by_id(self.conn, candidate)
            if row:
                return Run(self._facade, row)
            rows = tables.runs_with_prefix(self.conn, candidate, 6)
            if len(rows) == 1:
                return Run(self._facade, rows[0])
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
        0.1}}``, nested ones by dotted path (``{"theta.value": {">": 0.1}}``) (a list of such
        dicts: any of them); ``meta`` on the metadata by dotted path, with the shortcuts of
        ``-w`` (``purity``, ``entropy``, ``trace``, ``is_valid``, ``dims``):
        ``{"validation.purity": {">=": 0.9}, "state.dims": [2, 2]}``; ``valid=True`` keeps
        physical states, ``False`` flagged ones; ``tags={"figure": "3", "calibration": None}``
        keeps runs with those tags (None: any value). ``sort`` is ``"time"``, ``"experiment"``,
        ``"backend"``, ``"purity"``, ``"entropy"`` or a parameter name or dotted path,
        ascending unless ``reverse``; runs without that value come last. A selection that
        comes back empty because no run has a key it names: :meth:`unknown_keys` says which.
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
        return Selection(self._facade, (run for batch in batches for run in batch))

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
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise InvalidInput(f"{name} must be a non-negative integer, got {value!r}")
        if sort is None and not newest_first:
            reverse = not reverse
        batches = selecting.select_rows(
            self.conn,
            selection,
            sort=sort,
            reverse=reverse,
            limit=limit,
            offset=offset,
            batch=batch,
        )
        return ([Run(self._facade, row) for row in rows] for rows in batches)

    def run_ids(self, selection: RunFilter | None = None, *, refs: Sequence[str] = ()) -> list[str]:
        """IDs of the runs matching ``selection``, sorted (no run is read: for a million).
        With ``refs`` (IDs or unique prefixes, each of which must name a run), the runs they
        name that the selection also matches."""
        if isinstance(refs, str):
            refs = [refs]
        if not refs:
            return selecting.run_ids(self.conn, selection or RunFilter())
        named = {self.get(ref).run_id for ref in refs}
        if selection is not None and selection != RunFilter():
            named &= set(selecting.run_ids(self.conn, selection))
        return sorted(named)

    def runs_by_ids(self, run_ids: Sequence[str]) -> list[Run]:
        """The runs with these full IDs (those that exist), in the order given."""
        return [Run(self._facade, row) for row in tables.runs_by_ids(self.conn, list(run_ids))]

    def count(self, selection: RunFilter | None = None) -> int:
        return selecting.count(self.conn, selection or RunFilter())

    def unknown_keys(self, selection: RunFilter) -> list[str]:
        """Hints for a selection that matched nothing: each parameter or metadata path it
        names that no run of the rest of the selection has, with the keys (or paths) those
        runs do have, one line each (the ``runs`` command prints them)."""
        return selecting.unknown_keys(self.conn, selection)

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
        tags = annotation_tables.tags_by_run(self.conn, ids)
        notes = annotation_tables.notes_by_run(self.conn, ids)
        for run in runs:
            run.__dict__["artifacts"] = artifacts[run.run_id]
            run.__dict__["provenance"] = imported.get(run.run_id)
            run.__dict__["prefetched_tags"] = tags[run.run_id]
            run.__dict__["prefetched_notes"] = notes[run.run_id]
