"""Packing runs into a bundle: streamed, hashed once, byte-for-byte deterministic.

The runs are read once, a batch at a time (:mod:`.records`); the members describing them are
made from what was spooled (:mod:`.documents`); then every member is written in name order,
small files prepared on worker threads a bounded number of bytes ahead of the writer.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jsonvalues import is_text
from ..errors import ArchiveError, InvalidInput, StoredFileChanged
from ..store import tables
from ..store.connection import read_transaction
from ..store.files import atomic_output
from ..store.npyfile import (
    MAX_HEADER_BYTES,
    NpyFormatError,
    check_data_size,
    check_density_matrix_header,
    read_header,
)
from ..store.paths import ForeignFile, open_checked_path, read_data_file
from ..store.query import RunFilter
from .documents import (
    bytes_payload,
    creation_time,
    description,
    format_version,
    in_order,
    ro_crate,
    tag_files,
)
from .format import CHUNK, REPORT
from .records import (
    ArtifactKinds,
    Gathered,
    Payload,
    Spool,
    changed,
    gather,
    missing,
    runs_in_batches,
    select_run_ids,
)
from .zipwriter import ZipWriter, deflate

if TYPE_CHECKING:
    from ..archive import Archive

IN_MEMORY_MEMBER = CHUNK  # larger files are streamed chunk by chunk
Progress = Callable[[int], None]


@dataclass(frozen=True)
class PackReport:
    path: Path | str  # the file written, or the URL
    bundle_id: str
    runs: int
    files: int
    payload_bytes: int
    size: int


def pack_bundle(
    archive: Archive,
    output: str | os.PathLike[str],
    *,
    runs: Sequence[str] = (),
    experiment: str | None = None,
    backend: str | None = None,
    since: object = None,
    until: object = None,
    where: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    meta: Mapping[str, Any] | None = None,
    valid: bool | None = None,
    tags: Mapping[str, str | None] | None = None,
    selection: RunFilter | None = None,
    include_artifacts: bool = True,
    include_attachments: bool = True,
    note: str | None = None,
    with_report: bool = False,
    progress: Progress | None = None,
    storage_options: dict[str, Any] | None = None,
) -> PackReport:
    """Write the selected runs to ``output`` (a ``.qexb`` file) and describe what was written.

    Runs are chosen as by :meth:`Archive.runs` (``experiment``, ``backend``, ``since``,
    ``until``, ``where``, ``meta``, ``valid``, ``tags``), or by a prepared ``selection`` (a
    :class:`RunFilter`, not both), and/or named by ID or unique prefix in ``runs`` (then the
    named runs the filter matches); with none of these, every run is packed.

    ``include_artifacts=False`` leaves out the rendered artifacts (the Bloch page, and any
    page a renderer can make again); ``include_attachments=False`` leaves out the attachments
    (objects stored with a run when it was recorded: counts, circuits, noise models). Each
    keeps the other kind; the density matrices always go in.

    The bundle is written to a temporary name and renamed, so a failure leaves no half file.
    Packing the same runs again gives the same bytes; ``SOURCE_DATE_EPOCH`` sets the creation
    time, which otherwise is the newest run's. ``with_report`` adds the experiment report of
    the packed runs as ``data/report.html`` (format 2), its links pointing into the bundle.
    ``output`` may be a URL (``s3://bucket/x.qexb``; see :mod:`qex_archive.remote.transfer`), with
    fsspec's ``storage_options``.
    """
    if isinstance(runs, str):
        runs = [runs]
    criteria = RunFilter.build(
        experiment=experiment,
        backend=backend,
        since=since,
        until=until,
        where=where,
        meta=meta,
        valid=valid,
        tags=tags,
    )
    if selection is not None and not isinstance(selection, RunFilter):
        raise InvalidInput(f"selection must be a RunFilter, not {type(selection).__name__}")
    if criteria != RunFilter():
        if selection is not None:
            raise InvalidInput("give either a selection or filter keywords, not both")
        selection = criteria
    if note is not None and (not isinstance(note, str) or len(note) > 10_000 or not is_text(note)):
        raise InvalidInput("the note must be UTF-8 text of at most 10,000 characters")
    from ..remote.transfer import is_url, local_path, published

    if not is_url(output):
        output = local_path(output)
        if output.is_dir():
            raise InvalidInput(f"{output} is a directory; give a file name such as runs.qexb")
        if not output.parent.is_dir():
            raise InvalidInput(
                f"directory {output.parent} does not exist; create it or pick another"
            )
    with published(output, storage_options) as target:
        kinds = ArtifactKinds(rendered=include_artifacts, attached=include_attachments)
        report = _pack(archive, target, runs, selection, kinds, note, with_report, progress)
    return replace(report, path=os.fspath(output) if is_url(output) else Path(os.fspath(output)))


def _pack(
    archive: Archive,
    target: Path,
    runs: Sequence[str],
    selection: RunFilter | None,
    kinds: ArtifactKinds,
    note: str | None,
    with_report: bool,
    progress: Progress | None,
) -> PackReport:
    """Pack, reading the runs again if a stored file changed under it: the rows are read in
    one snapshot, but a file may be replaced after (``render`` writes a page under its name,
    then commits); if another connection committed meanwhile, or just once more in case its
    commit was on its way, the runs are gathered again from a new snapshot. A file that still
    differs from its row is damage, for ``check``."""
    for attempt in range(1, PACK_ATTEMPTS + 1):
        version = tables.data_version(archive.conn)
        try:
            return _pack_once(archive, target, runs, selection, kinds, note, with_report, progress)
        except StoredFileChanged:
            moved = tables.data_version(archive.conn) != version
            if attempt == PACK_ATTEMPTS or not (moved or attempt == 1):
                raise
            if not moved:
                time.sleep(0.2)  # a writer between its rename and its commit
    raise AssertionError("unreachable")


PACK_ATTEMPTS = 4


def _pack_once(
    archive: Archive,
    target: Path,
    runs: Sequence[str],
    selection: RunFilter | None,
    kinds: ArtifactKinds,
    note: str | None,
    with_report: bool,
    progress: Progress | None,
) -> PackReport:
    with read_transaction(archive.conn):  # every row from one snapshot
        run_ids = select_run_ids(archive, runs, selection)
        gathered = gather(archive, run_ids, kinds, bloch_pages=with_report)
        try:
            report = _report(archive, run_ids, gathered) if with_report else None
        except BaseException:
            gathered.close()
            raise
    written: list[Payload] = []
    try:
        created = creation_time(gathered)
        version = format_version(gathered, report)
        qex_description, bundle_id = description(gathered, created, note, version, report)
        documents = [qex_description] if report is None else [qex_description, report]
        documents.append(ro_crate(bundle_id, created, note, gathered, documents))
        bag_info, bagit, manifest, tagmanifest = tag_files(
            gathered, documents, bundle_id, created, version
        )
        written = [*documents, manifest]
        with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
            # the files are read, checked and deflated on other threads while this one writes
            members = chain(
                [bag_info, bagit], in_order(gathered, documents), [manifest, tagmanifest]
            )
            with atomic_output(target) as stream:
                bundle = ZipWriter(stream)
                for member, prepared in _read_ahead(members, pool):
                    _write_member(bundle, member, prepared, progress)
                bundle.finish()
    finally:
        gathered.close()
        for item in written:
            if isinstance(item.source, Spool):
                item.source.close()
    return PackReport(
        path=target,
        bundle_id=bundle_id,
        runs=gathered.runs,
        files=gathered.files + len(documents),
        payload_bytes=gathered.payload_bytes + sum(item.size for item in documents),
        size=target.stat().st_size,
    )


def _report(archive: Archive, run_ids: Sequence[str], gathered: Gathered) -> Payload:
    """The report page of the packed runs, linking to the Bloch pages packed with them (the
    one part of packing that holds every run in memory: the page shows them all)."""
    from ..views.report import report_page

    runs = [run for batch in runs_in_batches(archive, run_ids) for run in batch]
    pages = gathered.bloch_pages or {}
    page = report_page(runs, link=lambda run: pages.get(run.run_id))
    return bytes_payload(REPORT, page)


def _deflated(member: Payload) -> bool:
    return not member.name.endswith(".npy")  # complex data does not compress; text does


Prepared = tuple[bytes, int]  # what goes into the ZIP (deflated or not) and the CRC-32


def _read_ahead(
    members: Iterator[Payload], pool: Executor
) -> Iterator[tuple[Payload, Prepared | None]]:
    """Each member with its prepared bytes (``None`` for large files and spools, which are
    streamed), in order. Small files are read, checked against their recorded checksums,
    CRC'd and deflated on worker threads (file reads, hashing and zlib release the GIL), in
    batches, never more than a bounded number of bytes ahead of the writer."""
    pending: deque[tuple[list[Payload], Future[dict[str, Prepared]] | None]] = deque()
    batch: list[Payload] = []
    in_flight = 0

    def submit() -> None:
        nonlocal batch, in_flight
        if batch:
            pending.append((batch, pool.submit(_prepare_batch, batch)))
            in_flight += sum(item.size for item in batch)
            batch = []

    def ready() -> Iterator[tuple[Payload, Prepared | None]]:
        nonlocal in_flight
        items, future = pending.popleft()
        if future is None:  # streamed by the writer, or already in memory
            (item,) = items
            yield item, (_prepare(item) if isinstance(item.source, bytes) else None)
            return
        results = future.result()
        in_flight -= sum(item.size for item in items)
        for item in items:
            yield item, results[item.name]

    try:
        for member in members:
            if isinstance(member.source, str) and member.size <= IN_MEMORY_MEMBER:
                batch.append(member)
                if len(batch) == _BATCH:
                    submit()
            else:
                submit()
                pending.append(([member], None))
            while pending and (in_flight > _BUDGET or len(pending) > _AHEAD):
                yield from ready()
        submit()
        while pending:
            yield from ready()
    finally:
        for _, future in pending:
            if future is not None:
                future.cancel()


_BATCH = 64  # small files prepared together
_AHEAD = 8  # batches in flight at most
_BUDGET = 64 * 1024**2  # bytes in flight at most


def _prepare_batch(batch: Sequence[Payload]) -> dict[str, Prepared]:
    return {member.name: _prepare(member) for member in batch}


def _prepare(member: Payload) -> Prepared:
    if isinstance(member.source, bytes):
        content = member.source
    else:
        assert isinstance(member.source, str)
        try:
            content = read_data_file(member.source, member.relative, member.size + 1)
        except FileNotFoundError:
            missing(member.relative)
        except ForeignFile as exc:
            raise ArchiveError(f"cannot pack {member.relative}: {exc}") from None
        if len(content) != member.size or hashlib.sha256(content).hexdigest() != member.sha256:
            changed(member.relative)
        _check_npy(member, content)
    return (deflate(content) if _deflated(member) else content), zlib.crc32(content)


def _write_member(
    bundle: ZipWriter,
    member: Payload,
    prepared: Prepared | None,
    progress: Progress | None,
) -> None:
    if prepared is not None:
        data, crc = prepared
        bundle.write(member.name, data, size=member.size, crc=crc, deflated=_deflated(member))
        if progress and not isinstance(member.source, bytes):
            progress(member.size)
        return
    if isinstance(member.source, Spool):  # a description of the runs, written as it is read
        bundle.write_stream(member.name, member.source.chunks(), size=member.size, deflated=True)
        return
    assert isinstance(member.source, str)
    digest = hashlib.sha256()

    def chunks(path: str) -> Iterator[bytes]:
        with open_checked_path(path, member.relative) as stream:
            first = True
            while chunk := stream.read(CHUNK):
                if first:
                    _check_npy(member, chunk)
                    first = False
                digest.update(chunk)
                yield chunk
                if progress:
                    progress(len(chunk))

    try:
        bundle.write_stream(
            member.name, chunks(member.source), size=member.size, deflated=_deflated(member)
        )
    except FileNotFoundError:
        missing(member.relative)
    except ValueError:
        changed(member.relative)
    if digest.hexdigest() != member.sha256:
        changed(member.relative)


def _check_npy(member: Payload, head: bytes) -> None:
    """A density matrix goes into a bundle only as the archive's own layout, with the shape
    its run describes: the bundle would fail its own verification otherwise."""
    if member.npy_shape is None:
        return
    try:
        header = read_header(io.BytesIO(head[: MAX_HEADER_BYTES + 16]))
        check_density_matrix_header(header)
        check_data_size(header, member.size)
    except NpyFormatError as exc:
        raise ArchiveError(
            f"cannot pack {member.relative}: {exc}; run 'qex-archive check'"
        ) from None
    if header.shape != member.npy_shape:
        raise ArchiveError(
            f"cannot pack {member.relative}: it holds a {header.shape} matrix, its run's "
            f"metadata.state says {member.npy_shape}; run 'qex-archive check'"
        )
