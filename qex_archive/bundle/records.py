"""What a bundle carries of each run, gathered from the archive a batch of runs at a time.

The run records (``qex-bundle.json``'s ``runs``) and the list of files to pack go to spools
(:class:`Spool`: memory up to a few MiB, then a temporary file), so that packing 100,000 runs
holds one batch of runs in memory, not all of them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import ArchiveError, InvalidInput, StorageError, StoredFileChanged
from ..recording.names import check_name
from ..store import annotation_tables, tables
from ..store.files import failure_reason, sha256_of_stream
from ..store.npyfile import NpyFormatError, check_density_matrix_header, read_header
from ..store.paths import DataPaths, ForeignFile, open_checked_path
from ..store.query import RunFilter
from .description import run_problem
from .format import (
    CHUNK,
    MEDIA_TYPES,
    PAYLOAD_NAME,
    RUN_ID_PATTERN,
    canonical_json,
    schema_problem,
)

if TYPE_CHECKING:
    from ..archive import Archive
    from ..run import Run

BATCH = 500  # runs read from the archive at a time


@dataclass(frozen=True)
class Payload:
    """One member of the bundle and where its bytes come from."""

    name: str  # member name inside the bundle
    size: int
    sha256: str
    source: str | bytes | Spool  # a file's absolute path, the content, or a spool of it
    relative: str = ""  # the file's path inside the archive, for messages
    npy_shape: tuple[int, ...] | None = None  # a density matrix's shape, as its run says

    def fields(self) -> list[Any]:
        assert isinstance(self.source, str)
        return [self.name, self.size, self.sha256, self.source, self.relative, self.npy_shape]

    @classmethod
    def from_fields(cls, fields: list[Any]) -> Payload:
        name, size, sha256, source, relative, shape = fields
        return cls(name, size, sha256, source, relative, None if shape is None else tuple(shape))


class Spool:
    """Bytes written once, then read back in order: in memory up to 1 MiB, then a
    temporary file; their SHA-256 is kept as they are written."""

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:  # past 1 MiB the spool is a file in the temporary directory
            raise StorageError(
                f"cannot write the bundle's scratch files in {tempfile.gettempdir()}: "
                f"{failure_reason(exc)}; free space there or set TMPDIR to a larger disk"
            ) from exc
        self.size += len(data)
        self.digest.update(data)

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(CHUNK):
            yield chunk

    def lines(self) -> Iterator[bytes]:
        self._file.seek(0)
        yield from self._file

    def close(self) -> None:
        self._file.close()


class FileGroup:
    """The files of one folder of the bundle (``artifacts/`` or ``results/``), in name order,
    spooled as the writer reads them and already as their entries in the RO-Crate (``hasPart``
    and the File entities, each list comma-separated) and in the manifest."""

    def __init__(self) -> None:
        self.files, self.parts, self.entries, self.manifest = Spool(), Spool(), Spool(), Spool()
        self.count = self.size = 0
        self._last = ""

    def add(self, items: Sequence[Payload]) -> None:
        """A batch of files, after those added before (each spool gets one write a batch)."""
        if not items:
            return
        for item in items:
            if item.name <= self._last:  # runs come in ID order: their files' name order
                raise AssertionError(f"{item.name} after {self._last}: files out of order")
            self._last = item.name
        separator = b"," if self.count else b""
        self.files.write(json.dumps([item.fields() for item in items]).encode() + b"\n")
        self.parts.write(separator + _joined([crate_part(item) for item in items]))
        self.entries.write(separator + _joined([crate_entry(item) for item in items]))
        self.manifest.write(b"".join(manifest_line(item) for item in items))
        self.count += len(items)
        self.size += sum(item.size for item in items)

    def payload(self) -> Iterator[Payload]:
        for line in self.files.lines():
            for fields in json.loads(line):
                yield Payload.from_fields(fields)

    def close(self) -> None:
        for spool in (self.files, self.parts, self.entries, self.manifest):
            spool.close()


def crate_part(item: Payload) -> dict[str, Any]:
    """The item's reference in the RO-Crate's ``hasPart``."""
    return {"@id": item.name.removeprefix("data/")}


def crate_entry(item: Payload) -> dict[str, Any]:
    """The item's File entity in the RO-Crate."""
    return {
        "@id": item.name.removeprefix("data/"),
        "@type": "File",
        "contentSize": str(item.size),
        "sha256": item.sha256,
        "encodingFormat": MEDIA_TYPES.get(item.name.rsplit(".", 1)[-1], "application/octet-stream"),
    }


def _joined(entities: list[dict[str, Any]]) -> bytes:
    """Canonical JSON of each entity, comma-separated (one encoder call for all)."""
    return canonical_json(entities)[1:-2]


def manifest_line(item: Payload) -> bytes:
    return f"{item.sha256}  {item.name}\n".encode()


@dataclass
class Gathered:
    """The selected runs, read once: their records and files spooled, what the bundle's
    other members need to know of them summed up."""

    runs: int = 0
    records: Spool = field(default_factory=Spool)  # "[record,record,...]", canonical JSON
    artifacts: FileGroup = field(default_factory=FileGroup)  # data/artifacts/, in name order
    results: FileGroup = field(default_factory=FileGroup)  # data/results/
    newest: float = float("-inf")
    annotated: bool = False  # a run has tags or notes: bundle format 2
    experiments: set[str] = field(default_factory=set)
    plugins: dict[str, str] = field(default_factory=dict)
    bloch_pages: dict[str, str] | None = None  # run ID -> its Bloch page, for a report

    @property
    def files(self) -> int:
        return self.artifacts.count + self.results.count

    @property
    def payload_bytes(self) -> int:
        return self.artifacts.size + self.results.size

    def close(self) -> None:
        self.records.close()
        self.artifacts.close()
        self.results.close()


def select_run_ids(archive: Archive, refs: Sequence[str], selection: RunFilter | None) -> list[str]:
    """IDs of the runs named by ``refs`` (IDs or prefixes) and/or matching ``selection``,
    sorted."""
    chosen = archive.run_ids(selection, refs=refs)
    if not chosen:
        raise InvalidInput(
            "no runs match; nothing to pack (check the filters with 'qex-archive runs')"
        )
    return chosen


def runs_in_batches(archive: Archive, run_ids: Sequence[str]) -> Iterator[list[Run]]:
    for start in range(0, len(run_ids), BATCH):
        yield archive.runs_by_ids(run_ids[start : start + BATCH])


@dataclass(frozen=True)
class ArtifactKinds:
    """Which of a run's artifacts go into the bundle: the rendered ones (pages a renderer can
    make again), the attached ones (objects stored with the run, which nothing can remake)."""

    rendered: bool = True
    attached: bool = True

    def artifacts_of(
        self, archive: Archive, runs: Sequence[Run]
    ) -> dict[str, list[tuple[str, str, str]]]:
        """``(name, path, media type)`` of each run's artifacts of these kinds."""
        chosen: dict[str, list[tuple[str, str, str]]] = {run.run_id: [] for run in runs}
        if not (self.rendered or self.attached):
            return chosen
        both = self.rendered and self.attached
        attached = {} if both else {run.run_id: set(run.attachment_names) for run in runs}
        for run_id, name, relative, media, _ in tables.artifact_rows(archive.conn, list(chosen)):
            if both or (self.attached if name in attached[run_id] else self.rendered):
                chosen[run_id].append((name, relative, media))
        return chosen


def known_payload_size(archive: Archive, run_ids: Sequence[str], kinds: ArtifactKinds) -> int:
    """What the selected runs' files add up to, by the sizes recorded for them (a progress
    bar's total: files recorded without checksums count nothing)."""
    total = 0
    for runs in runs_in_batches(archive, run_ids):
        ids = [run.run_id for run in runs]
        wanted = {run.density_matrix_path for run in runs}
        for artifacts in kinds.artifacts_of(archive, runs).values():
            wanted.update(relative for _, relative, _ in artifacts)
        for path, (size, _) in tables.file_checksums(archive.conn, ids).items():
            if path in wanted:
                total += size
    return total


def gather(
    archive: Archive, run_ids: Sequence[str], kinds: ArtifactKinds, *, bloch_pages: bool = False
) -> Gathered:
    """Read every selected run once, refusing any a bundle cannot carry (before a byte of the
    bundle is written), and spool its record and files (and note each run's Bloch page when
    ``bloch_pages``, for a report)."""
    gathered = Gathered(bloch_pages={} if bloch_pages else None)
    content = gathered.records
    try:
        for runs in runs_in_batches(archive, run_ids):
            files, records = _collect_payload(archive, runs, kinds)
            _check_packable(records)
            for record in records:
                content.write(b"," if gathered.runs else b"[")
                content.write(_encoded(record))
                gathered.runs += 1
                gathered.annotated |= "tags" in record or "notes" in record
                gathered.experiments.add(record["experiment_name"])
                gathered.newest = max(gathered.newest, record["timestamp"])
                _add_plugins(gathered.plugins, record["metadata"])
            gathered.results.add([f for f in files if f.name.startswith("data/results/")])
            gathered.artifacts.add([f for f in files if f.name.startswith("data/artifacts/")])
            for item in files:
                if gathered.bloch_pages is not None and item.name.endswith("_bloch.html"):
                    run_id = item.name.removeprefix("data/artifacts/")[:36]
                    gathered.bloch_pages[run_id] = item.name.removeprefix("data/")
        content.write(b"]")
    except BaseException:
        gathered.close()
        raise
    return gathered


def _encoded(record: dict[str, Any]) -> bytes:
    try:
        return canonical_json(record)[:-1]
    except ValueError:  # NaN or Infinity, which JSON cannot hold
        raise _unpackable(record["run_id"], "it holds NaN or Infinity") from None


def _add_plugins(versions: dict[str, str], metadata: Any) -> None:
    recorded = ((metadata or {}).get("qex") or {}).get("plugins") or {}
    if isinstance(recorded, dict):
        versions.update({str(k): str(v) for k, v in recorded.items()})


def _collect_payload(
    archive: Archive, runs: Sequence[Run], kinds: ArtifactKinds
) -> tuple[list[Payload], list[dict[str, Any]]]:
    ids = [run.run_id for run in runs]
    stored = tables.file_checksums(archive.conn, ids)
    tags = annotation_tables.tags_by_run(archive.conn, ids)
    notes = annotation_tables.notes_by_run(archive.conn, ids)
    files = _Files(archive.root, stored)
    payload: list[Payload] = []
    records = []
    artifacts_of = kinds.artifacts_of(archive, runs)
    for run in runs:
        if not RUN_ID_PATTERN.fullmatch(run.run_id):
            raise _unpackable(run.run_id, "bundles carry UUID run IDs only (as qex records them)")
        rho = files.payload(
            run.run_id, run.density_matrix_path, f"data/results/{run.run_id}_rho.npy"
        )
        try:
            params, metadata = run.params, run.metadata
        except ArchiveError:
            raise _unpackable(
                run.run_id,
                "its params or metadata in the database are not JSON objects (NaN and Infinity "
                "are not JSON either)",
                "correct the row, or leave the run out of the selection",
            ) from None
        state = metadata.get("state") if isinstance(metadata, dict) else None
        shape = state.get("shape") if isinstance(state, dict) else None
        if shape is None:  # recorded without qex's state summary: ask the file
            shape = _shape_of(run, rho)
        if isinstance(shape, (list, tuple)) and all(type(n) is int for n in shape):
            rho = replace(rho, npy_shape=tuple(shape))
        payload.append(rho)
        artifacts = []
        for name, relative, media in sorted(artifacts_of[run.run_id]):
            extension = relative.rsplit(".", 1)[-1]
            member = f"data/artifacts/{run.run_id}_{name}.{extension}"
            if not PAYLOAD_NAME.match(member):
                flag = "--no-attachments" if name in run.attachment_names else "--no-artifacts"
                raise _unpackable(
                    run.run_id,
                    f"its artifact {name!r} ({relative}) needs a name "
                    "of lowercase letters, digits and _ and a short lowercase extension",
                    f"pack with {flag}, or leave the run out of the selection",
                )
            item = files.payload(run.run_id, relative, member)
            payload.append(item)
            artifacts.append(
                {
                    "name": name,
                    "media_type": media,
                    "path": item.name,
                    "size": item.size,
                    "sha256": item.sha256,
                }
            )
        records.append(
            {
                "run_id": run.run_id,
                "experiment_name": run.experiment_name,
                "params": params,
                "backend_name": run.backend_name,
                "timestamp": run.timestamp,
                "metadata": metadata,
                "density_matrix": {
                    "path": rho.name,
                    "size": rho.size,
                    "sha256": rho.sha256,
                    "dtype": "complex128",
                    "shape": list(shape) if isinstance(shape, (list, tuple)) else shape,
                },
                "artifacts": artifacts,
                **_annotations(tags.get(run.run_id), notes.get(run.run_id)),
            }
        )
    return payload, records


def _annotations(tags: dict[str, str] | None, notes: list[dict[str, Any]] | None) -> dict[str, Any]:
    """A run's tags and notes for its record (format 2), absent when it has none."""
    extra: dict[str, Any] = {}
    if tags:
        extra["tags"] = tags
    if notes:
        extra["notes"] = notes
    return extra


def _shape_of(run: Run, rho: Payload) -> tuple[int, ...]:
    assert isinstance(rho.source, str)
    try:
        with open_checked_path(rho.source, rho.relative) as stream:
            header = read_header(stream)
        check_density_matrix_header(header)
    except FileNotFoundError:
        missing(rho.relative)
    except NpyFormatError as exc:
        raise _unpackable(run.run_id, f"{rho.relative}: {exc}") from None
    return header.shape


def _check_packable(records: Sequence[dict[str, Any]]) -> None:
    """Refuse, before writing anything, a run that bundle format 1 cannot carry (archives
    made by hand may hold one): the bundle would fail its own verification."""
    for record in records:
        problem = schema_problem(record, "run")
        if problem:
            raise _unpackable(record["run_id"], problem)
        problem = run_problem(record)
        if problem:
            raise _unpackable(record["run_id"], problem, "run 'qex-archive check'")
        for key, what in (("experiment_name", "experiment name"), ("backend_name", "backend")):
            try:
                check_name(record[key], what)
            except InvalidInput as exc:
                raise _unpackable(record["run_id"], str(exc)) from None


def _unpackable(run_id: str, why: str, fix: str = "leave it out of the selection") -> ArchiveError:
    return ArchiveError(f"run {run_id} cannot go into a bundle: {why}; {fix}")


class _Files:
    """The payload of the archive's stored files, at their checked paths."""

    def __init__(self, root: Path, stored: dict[str, tuple[int, str]]) -> None:
        self.path_of, self.stored = DataPaths(root), stored

    def payload(self, run_id: str, relative: str, name: str) -> Payload:
        try:
            path = self.path_of(relative)
            known = self.stored.get(relative)
            if known is None:  # an archive adopted without checksums
                with open_checked_path(path, relative) as stream:
                    known = sha256_of_stream(stream)
        except FileNotFoundError:
            missing(relative)
        except ForeignFile as exc:
            raise _unpackable(run_id, str(exc)) from None
        return Payload(name, known[0], known[1], path, relative)


def missing(relative: str) -> NoReturn:
    raise StoredFileChanged(
        f"{relative} is missing from the archive; run 'qex-archive check'", relative
    )


def changed(relative: str) -> NoReturn:
    raise StoredFileChanged(
        f"{relative} differs from its recorded checksum; run 'qex-archive check'", relative
    )


def content_hash(gathered: Gathered, note: bytes) -> str:
    """SHA-256 of the records (as ``[...]``) and the note: what names the bundle."""
    digest = gathered.records.digest.copy()
    digest.update(note)
    return digest.hexdigest()
