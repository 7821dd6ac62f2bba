"""Packing runs into a bundle: streamed, hashed once, byte-for-byte deterministic."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__, tables
from ..archive import Archive
from ..archive_files import ForeignFile, data_path, open_checked_path, read_data_file
from ..errors import ArchiveError, InvalidInput
from ..jsonvalues import is_text
from ..names import check_name
from ..npyfile import (
    MAX_HEADER_BYTES,
    NpyFormatError,
    check_data_size,
    check_density_matrix_header,
    read_header,
)
from ..query import RunFilter
from ..run import Run
from ..storage import atomic_output, sha256_of_stream
from .description import run_problem
from .format import (
    BAG_INFO,
    BAGIT,
    BAGIT_TXT,
    CHUNK,
    DESCRIPTION,
    MANIFEST,
    MEDIA_TYPES,
    PAYLOAD_NAME,
    REPORT,
    RO_CRATE,
    RUN_ID_PATTERN,
    TAGMANIFEST,
    canonical_json,
    schema_problem,
)
from .zipwriter import ZipWriter, deflate

IN_MEMORY_MEMBER = CHUNK  # larger files are streamed chunk by chunk
BUNDLE_NAMESPACE = uuid.UUID("6f7e1a52-4f0e-5c3b-9a51-7b0c7e2f9d10")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class PackReport:
    path: Path | str  # the file written, or the URL
    bundle_id: str
    runs: int
    files: int
    payload_bytes: int
    size: int


@dataclass(frozen=True)
class _Payload:
    name: str  # member name inside the bundle
    size: int
    sha256: str
    source: str | bytes  # a file's absolute path, or the content itself
    relative: str = ""  # the file's path inside the archive, for messages
    npy_shape: tuple[int, ...] | None = None  # a density matrix's shape, as its run says


def select_runs(archive: Archive, refs: Sequence[str], selection: RunFilter | None) -> list[Run]:
    """Runs named by ``refs`` (IDs or prefixes) and/or matching ``selection``, by run ID."""
    chosen: dict[str, Run] = {}
    if refs:
        for ref in refs:
            run = archive.get(ref)
            chosen[run.run_id] = run
        if selection is not None and selection != RunFilter():
            allowed = {run.run_id for run in archive.select(selection)}
            chosen = {key: run for key, run in chosen.items() if key in allowed}
    else:
        chosen = {run.run_id: run for run in archive.select(selection or RunFilter())}
    if not chosen:
        raise InvalidInput(
            "no runs match; nothing to pack (check the filters with 'qex-archive runs')"
        )
    return [chosen[key] for key in sorted(chosen)]


def pack_bundle(
    archive: Archive,
    output: str | os.PathLike[str],
    *,
    runs: Sequence[str] = (),
    experiment: str | None = None,
    backend: str | None = None,
    since: object = None,
    until: object = None,
    where: Mapping[str, Any] | None = None,
    selection: RunFilter | None = None,
    include_artifacts: bool = True,
    note: str | None = None,
    with_report: bool = False,
    progress: Progress | None = None,
    storage_options: dict[str, Any] | None = None,
) -> PackReport:
    """Write the selected runs to ``output`` (a ``.qexb`` file) and describe what was written.

    Runs are chosen as by :meth:`Archive.runs` (``experiment``, ``backend``, ``since``,
    ``until``, ``where``), or by a prepared ``selection``, and/or named by ID or unique
    prefix in ``runs``; with none of these, every run is packed.

    The bundle is written to a temporary name and renamed, so a failure leaves no half file.
    Packing the same runs again gives the same bytes; ``SOURCE_DATE_EPOCH`` sets the creation
    time, which otherwise is the newest run's. ``with_report`` adds the experiment report of
    the packed runs as ``data/report.html`` (format 2), its links pointing into the bundle.
    ``output`` may be a URL (``s3://bucket/x.qexb``; see :mod:`qex_archive.remote`), with
    fsspec's ``storage_options``.
    """
    if isinstance(runs, str):
        runs = [runs]
    criteria = RunFilter.build(
        experiment=experiment, backend=backend, since=since, until=until, where=where
    )
    if criteria != RunFilter():
        if selection is not None:
            raise InvalidInput("give either a selection or filter keywords, not both")
        selection = criteria
    if note is not None and (not isinstance(note, str) or len(note) > 10_000 or not is_text(note)):
        raise InvalidInput("the note must be UTF-8 text of at most 10,000 characters")
    from ..remote import is_url, local_path, published

    if not is_url(output):
        output = local_path(output)
        if output.is_dir():
            raise InvalidInput(f"{output} is a directory; give a file name such as runs.qexb")
        if not output.parent.is_dir():
            raise InvalidInput(
                f"directory {output.parent} does not exist; create it or pick another"
            )
    with published(output, storage_options) as target:
        report = _pack(
            archive, target, runs, selection, include_artifacts, note, with_report, progress
        )
    return replace(report, path=os.fspath(output) if is_url(output) else Path(os.fspath(output)))


def _pack(
    archive: Archive,
    target: Path,
    runs: Sequence[str],
    selection: RunFilter | None,
    include_artifacts: bool,
    note: str | None,
    with_report: bool,
    progress: Progress | None,
) -> PackReport:
    selected = select_runs(archive, runs, selection)
    files, records = _collect_payload(archive, selected, include_artifacts)
    with ThreadPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        # the files are read, checked and deflated on other threads while this one writes JSON
        ahead = _ReadAhead(files, pool)
        try:
            _check_packable(records)
            created = _creation_time(selected)
            report = _report(selected, records) if with_report else None
            version = 2 if report is not None else _format_version(records)
            description, bundle_id = _description(records, created, selected, note, version, report)
            payload = [*files, _bytes_payload(DESCRIPTION, description)]
            if report is not None:
                payload.append(report)
            crate = _ro_crate(bundle_id, created, note, records, payload)
            payload.append(_bytes_payload(RO_CRATE, canonical_json(crate)))
            members = _with_tag_files(payload, bundle_id, created, version)
            with atomic_output(target) as stream:
                bundle = ZipWriter(stream)
                for member in members:
                    _write_member(bundle, member, ahead.take(member), progress)
                bundle.finish()
        finally:
            ahead.cancel()
    return PackReport(
        path=target,
        bundle_id=bundle_id,
        runs=len(selected),
        files=len(payload),
        payload_bytes=sum(p.size for p in payload),
        size=target.stat().st_size,
    )


def _report(runs: Sequence[Run], records: Sequence[dict[str, Any]]) -> _Payload:
    """The report page of the packed runs, linking to the Bloch pages packed with them."""
    from ..report import report_page

    packed = {
        record["run_id"]: artifact["path"].removeprefix("data/")
        for record in records
        for artifact in record["artifacts"]
        if artifact["name"] == "bloch"
    }
    page = report_page(runs, link=lambda run: packed.get(run.run_id))
    return _bytes_payload(REPORT, page)


def _format_version(records: Sequence[dict[str, Any]]) -> int:
    """Format 2 only when a run has tags or notes: other bundles stay byte for byte what
    format 1 wrote, and readers of format 1 still read them."""
    return 2 if any("tags" in record or "notes" in record for record in records) else 1


def _description(
    records: list[dict[str, Any]],
    created: str,
    runs: Sequence[Run],
    note: str | None,
    version: int,
    report: _Payload | None = None,
) -> tuple[bytes, str]:
    """``qex-bundle.json`` and the bundle id, a uuid5 of the run records and the note."""
    try:
        records_json = canonical_json(records)[:-1]
    except ValueError:  # NaN or Infinity, which JSON cannot hold; find the run
        for record in records:
            try:
                canonical_json(record)
            except ValueError:
                raise _unpackable(record["run_id"], "it holds NaN or Infinity") from None
        raise
    content = hashlib.sha256(records_json + canonical_json(note)).hexdigest()
    bundle_id = str(uuid.uuid5(BUNDLE_NAMESPACE, content))
    head: dict[str, Any] = {
        "format": "qex-bundle",
        "format_version": version,
        "bundle_id": bundle_id,
        "created": created,
        "creator": {
            "software": "qex-archive",
            "version": __version__,
            "plugins": _plugin_versions(runs),
        },
    }
    if note:
        head["note"] = note
    if report is not None:
        head["report"] = {"path": report.name, "size": report.size, "sha256": report.sha256}
    # "runs" sorts after every other key, so the records (encoded once, above) go last.
    return canonical_json(head)[:-2] + b',"runs":' + records_json + b"}\n", bundle_id


def _with_tag_files(
    payload: list[_Payload], bundle_id: str, created: str, version: int
) -> list[_Payload]:
    """The payload and the BagIt tag files describing it, in member order."""
    payload = sorted(payload, key=lambda item: item.name)
    manifest = "".join(f"{p.sha256}  {p.name}\n" for p in payload).encode()
    oxum = f"{sum(p.size for p in payload)}.{len(payload)}"
    bag_info = (
        f"Bag-Software-Agent: qex-archive {__version__}\n"
        f"Bagging-Date: {created[:10]}\n"
        f"External-Identifier: urn:uuid:{bundle_id}\n"
        f"Payload-Oxum: {oxum}\n"
        f"QEX-Bundle-Version: {version}\n"
    ).encode()
    tags = {BAGIT: BAGIT_TXT, BAG_INFO: bag_info, MANIFEST: manifest}
    tagmanifest = "".join(
        f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in sorted(tags.items())
    ).encode()
    tags[TAGMANIFEST] = tagmanifest
    return sorted(
        [*payload, *(_bytes_payload(name, content) for name, content in tags.items())],
        key=lambda m: m.name,
    )


def _collect_payload(
    archive: Archive, runs: Sequence[Run], include_artifacts: bool
) -> tuple[list[_Payload], list[dict[str, Any]]]:
    ids = [run.run_id for run in runs]
    stored = tables.file_checksums(archive.conn, ids)
    tags, notes = tables.tags_by_run(archive.conn, ids), tables.notes_by_run(archive.conn, ids)
    root = archive.root
    payload: list[_Payload] = []
    records = []
    artifacts_of = (
        archive.artifacts_by_run([run.run_id for run in runs]) if include_artifacts else {}
    )
    for run in runs:
        if not RUN_ID_PATTERN.fullmatch(run.run_id):
            raise _unpackable(run.run_id, "bundles carry UUID run IDs only (as qex records them)")
        rho = _file_payload(
            run.run_id, root, run.density_matrix_path, f"data/results/{run.run_id}_rho.npy", stored
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
        if include_artifacts:
            for artifact in sorted(artifacts_of[run.run_id], key=lambda a: a.name):
                extension = artifact.relative_path.rsplit(".", 1)[-1]
                member = f"data/artifacts/{run.run_id}_{artifact.name}.{extension}"
                if not PAYLOAD_NAME.match(member):
                    raise _unpackable(
                        run.run_id,
                        f"its artifact {artifact.name!r} ({artifact.relative_path}) needs a name "
                        "of lowercase letters, digits and _ and a short lowercase extension",
                        "pack with --no-artifacts, or leave the run out of the selection",
                    )
                item = _file_payload(run.run_id, root, artifact.relative_path, member, stored)
                payload.append(item)
                artifacts.append(
                    {
                        "name": artifact.name,
                        "media_type": artifact.media_type,
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


def _shape_of(run: Run, rho: _Payload) -> tuple[int, ...]:
    assert isinstance(rho.source, str)
    try:
        with open_checked_path(rho.source, rho.relative) as stream:
            header = read_header(stream)
        check_density_matrix_header(header)
    except FileNotFoundError:
        _missing(rho.relative)
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


def _file_payload(
    run_id: str, root: Path, relative: str, name: str, stored: dict[str, tuple[int, str]]
) -> _Payload:
    try:
        path = data_path(root, relative)
        known = stored.get(relative)
        if known is None:  # an archive adopted without checksums
            with open_checked_path(path, relative) as stream:
                known = sha256_of_stream(stream)
    except FileNotFoundError:
        _missing(relative)
    except ForeignFile as exc:
        raise _unpackable(run_id, str(exc)) from None
    return _Payload(name, known[0], known[1], str(path), relative)


def _missing(relative: str) -> NoReturn:
    raise ArchiveError(f"{relative} is missing from the archive; run 'qex-archive check'")


def _bytes_payload(name: str, content: bytes) -> _Payload:
    return _Payload(name, len(content), hashlib.sha256(content).hexdigest(), content)


def _deflated(member: _Payload) -> bool:
    return not member.name.endswith(".npy")  # complex data does not compress; text does


Prepared = tuple[bytes, int]  # what goes into the ZIP (deflated or not) and the CRC-32


class _ReadAhead:
    """Small files read, checked against their recorded checksums, CRC'd and deflated on
    worker threads (file reads, hashing and zlib release the GIL), in batches and in member
    order, never more than a bounded number of bytes ahead of the writer."""

    BATCH = 64
    BUDGET = 64 * 1024**2

    def __init__(self, files: Sequence[_Payload], pool: Executor) -> None:
        small = sorted(
            (f for f in files if f.size <= IN_MEMORY_MEMBER and _deflated(f)),
            key=lambda item: item.name,
        )
        self._batches = [small[i : i + self.BATCH] for i in range(0, len(small), self.BATCH)]
        self._batch_of = {m.name: i for i, batch in enumerate(self._batches) for m in batch}
        self._futures: dict[int, Future[dict[str, Prepared]]] = {}
        self._pool = pool
        self._next = self._in_flight = 0
        self._submit()

    def take(self, member: _Payload) -> Prepared | None:
        """The member's prepared bytes; ``None`` for the large files, which are streamed."""
        if isinstance(member.source, bytes):
            return _prepare(member)
        index = self._batch_of.get(member.name)
        if index is None:
            return _prepare(member) if member.size <= IN_MEMORY_MEMBER else None
        results = self._futures[index].result()
        prepared = results.pop(member.name)
        if not results:
            del self._futures[index]
            self._in_flight -= sum(m.size for m in self._batches[index])
            self._submit()
        return prepared

    def cancel(self) -> None:
        for future in self._futures.values():
            future.cancel()

    def _submit(self) -> None:
        while self._next < len(self._batches) and self._in_flight < self.BUDGET:
            batch = self._batches[self._next]
            self._futures[self._next] = self._pool.submit(_prepare_batch, batch)
            self._in_flight += sum(m.size for m in batch)
            self._next += 1


def _prepare_batch(batch: Sequence[_Payload]) -> dict[str, Prepared]:
    return {member.name: _prepare(member) for member in batch}


def _prepare(member: _Payload) -> Prepared:
    if isinstance(member.source, bytes):
        content = member.source
    else:
        try:
            content = read_data_file(member.source, member.relative, member.size + 1)
        except FileNotFoundError:
            _missing(member.relative)
        except ForeignFile as exc:
            raise ArchiveError(f"cannot pack {member.relative}: {exc}") from None
        if len(content) != member.size or hashlib.sha256(content).hexdigest() != member.sha256:
            _changed(member.relative)
        _check_npy(member, content)
    return (deflate(content) if _deflated(member) else content), zlib.crc32(content)


def _write_member(
    bundle: ZipWriter,
    member: _Payload,
    prepared: Prepared | None,
    progress: Progress | None,
) -> None:
    if prepared is not None:
        data, crc = prepared
        bundle.write(member.name, data, size=member.size, crc=crc, deflated=_deflated(member))
        if progress and not isinstance(member.source, bytes):
            progress(member.size)
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
        _missing(member.relative)
    except ValueError:
        _changed(member.relative)
    if digest.hexdigest() != member.sha256:
        _changed(member.relative)


def _check_npy(member: _Payload, head: bytes) -> None:
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


def _changed(relative: str) -> NoReturn:
    raise ArchiveError(f"{relative} differs from its recorded checksum; run 'qex-archive check'")


def _creation_time(runs: Sequence[Run]) -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        timestamp = float(epoch) if epoch else max(run.timestamp for run in runs)
    except ValueError:
        raise InvalidInput(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp") from None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def _plugin_versions(runs: Sequence[Run]) -> dict[str, str]:
    versions: dict[str, str] = {}
    for run in runs:
        recorded = ((run.metadata or {}).get("qex") or {}).get("plugins") or {}
        if isinstance(recorded, dict):
            versions.update({str(k): str(v) for k, v in recorded.items()})
    return dict(sorted(versions.items()))


def _ro_crate(
    bundle_id: str,
    created: str,
    note: str | None,
    records: Sequence[dict[str, Any]],
    payload: Sequence[_Payload],
) -> dict[str, Any]:
    """An RO-Crate 1.2 description of the same files, for tools that know nothing of qex."""
    files = sorted(payload, key=lambda item: item.name)
    software = {
        "@id": "#qex-archive",
        "@type": "SoftwareApplication",
        "name": "qex-archive",
        "version": __version__,
    }
    experiments = sorted({run["experiment_name"] for run in records})
    graph: list[dict[str, Any]] = [
        {
            "@id": "ro-crate-metadata.json",
            "@type": "CreativeWork",
            "conformsTo": {"@id": "https://w3id.org/ro/crate/1.2"},
            "about": {"@id": "./"},
        },
        {
            "@id": "./",
            "@type": "Dataset",
            "identifier": f"urn:uuid:{bundle_id}",
            "name": f"qex-archive bundle of {len(records)} runs",
            "description": note
            or f"Quantum experiment runs ({', '.join(experiments)[:500]}) and density matrices.",
            "datePublished": created,
            "hasPart": [{"@id": item.name.removeprefix("data/")} for item in files],
        },
        software,
    ]
    for item in files:
        graph.append(
            {
                "@id": item.name.removeprefix("data/"),
                "@type": "File",
                "contentSize": str(item.size),
                "sha256": item.sha256,
                "encodingFormat": _media_type(item.name),
            }
        )
    graph.append(
        {
            "@id": "#pack",
            "@type": "CreateAction",
            "instrument": {"@id": "#qex-archive"},
            "result": {"@id": "./"},
            "endTime": created,
        }
    )
    return {"@context": "https://w3id.org/ro/crate/1.2/context", "@graph": graph}


def _media_type(name: str) -> str:
    return MEDIA_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
