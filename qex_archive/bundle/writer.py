"""Packing runs into a bundle: streamed, hashed once, byte-for-byte deterministic."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import __version__
from ..archive import Archive
from ..errors import ArchiveError, InvalidInput
from ..query import RunFilter
from ..run import Run
from ..storage import atomic_output, sha256_of_file
from .format import (
    BAG_INFO,
    BAGIT,
    BAGIT_TXT,
    CHUNK,
    DESCRIPTION,
    FIXED_ZIP_TIME,
    FORMAT_VERSION,
    MANIFEST,
    RO_CRATE,
    TAGMANIFEST,
    canonical_json,
)

BUNDLE_NAMESPACE = uuid.UUID("6f7e1a52-4f0e-5c3b-9a51-7b0c7e2f9d10")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class PackReport:
    path: Path
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
    source: Path | bytes


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
    selection: RunFilter | None = None,
    include_artifacts: bool = True,
    note: str | None = None,
    progress: Progress | None = None,
) -> PackReport:
    """Write the selected runs to ``output`` (a ``.qexb`` file) and describe what was written.

    The bundle is written to a temporary name and renamed, so a failure leaves no half file.
    Packing the same runs again gives the same bytes; ``SOURCE_DATE_EPOCH`` sets the creation
    time, which otherwise is the newest run's.
    """
    if note is not None and (not isinstance(note, str) or len(note) > 10_000):
        raise InvalidInput("the note must be text of at most 10,000 characters")
    target = Path(output)
    if target.is_dir():
        raise InvalidInput(f"{target} is a directory; give a file name such as runs.qexb")
    if not target.parent.is_dir():
        raise InvalidInput(f"directory {target.parent} does not exist; create it or pick another")
    selected = select_runs(archive, runs, selection)
    payload, records = _collect_payload(archive, selected, include_artifacts)
    created = _creation_time(selected)
    bundle_id = str(uuid.uuid5(BUNDLE_NAMESPACE, json.dumps([records, note], sort_keys=True)))
    description: dict[str, Any] = {
        "format": "qex-bundle",
        "format_version": FORMAT_VERSION,
        "bundle_id": bundle_id,
        "created": created,
        "creator": {
            "software": "qex-archive",
            "version": __version__,
            "plugins": _plugin_versions(selected),
        },
        "runs": records,
    }
    if note:
        description["note"] = note
    payload.append(_bytes_payload(DESCRIPTION, canonical_json(description)))
    payload.append(_bytes_payload(RO_CRATE, canonical_json(_ro_crate(description, payload))))
    payload.sort(key=lambda item: item.name)

    manifest = "".join(f"{p.sha256}  {p.name}\n" for p in payload).encode()
    oxum = f"{sum(p.size for p in payload)}.{len(payload)}"
    bag_info = (
        f"Bag-Software-Agent: qex-archive {__version__}\n"
        f"Bagging-Date: {created[:10]}\n"
        f"External-Identifier: urn:uuid:{bundle_id}\n"
        f"Payload-Oxum: {oxum}\n"
        f"QEX-Bundle-Version: {FORMAT_VERSION}\n"
    ).encode()
    tags = {BAGIT: BAGIT_TXT, BAG_INFO: bag_info, MANIFEST: manifest}
    tagmanifest = "".join(
        f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in sorted(tags.items())
    ).encode()
    tags[TAGMANIFEST] = tagmanifest
    members = sorted(
        [*payload, *(_bytes_payload(name, content) for name, content in tags.items())],
        key=lambda m: m.name,
    )

    with atomic_output(target) as stream, zipfile.ZipFile(stream, "w", allowZip64=True) as bundle:
        for member in members:
            _write_member(bundle, member, archive, progress)
    return PackReport(
        path=target,
        bundle_id=bundle_id,
        runs=len(selected),
        files=len(payload),
        payload_bytes=sum(p.size for p in payload),
        size=target.stat().st_size,
    )


def _collect_payload(
    archive: Archive, runs: Sequence[Run], include_artifacts: bool
) -> tuple[list[_Payload], list[dict[str, Any]]]:
    stored = dict(
        (
            (path, (size, sha))
            for path, size, sha in archive.conn.execute("SELECT path, size, sha256 FROM qex_files")
        )
    )
    payload: list[_Payload] = []
    records = []
    artifacts_of = (
        archive.artifacts_by_run([run.run_id for run in runs]) if include_artifacts else {}
    )
    for run in runs:
        rho = _file_payload(
            archive, run.density_matrix_path, f"data/results/{run.run_id}_rho.npy", stored
        )
        payload.append(rho)
        state = run.state_info
        shape = state.get("shape") or list(run.rho.shape)
        artifacts = []
        if include_artifacts:
            for artifact in sorted(artifacts_of[run.run_id], key=lambda a: a.name):
                extension = artifact.relative_path.rsplit(".", 1)[-1]
                item = _file_payload(
                    archive,
                    artifact.relative_path,
                    f"data/artifacts/{run.run_id}_{artifact.name}.{extension}",
                    stored,
                )
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
                "params": run.params,
                "backend_name": run.backend_name,
                "timestamp": run.timestamp,
                "metadata": run.metadata,
                "density_matrix": {
                    "path": rho.name,
                    "size": rho.size,
                    "sha256": rho.sha256,
                    "dtype": "complex128",
                    "shape": list(shape),
                },
                "artifacts": artifacts,
            }
        )
    return payload, records


def _file_payload(
    archive: Archive, relative: str, name: str, stored: dict[str, tuple[int, str]]
) -> _Payload:
    path = archive.resolve_path(relative)
    if not path.is_file():
        raise ArchiveError(f"{relative} is missing from the archive; run 'qex-archive check'")
    size, sha = stored.get(relative) or sha256_of_file(path)  # archives adopted without checksums
    return _Payload(name, size, sha, path)


def _bytes_payload(name: str, content: bytes) -> _Payload:
    return _Payload(name, len(content), hashlib.sha256(content).hexdigest(), content)


def _write_member(
    bundle: zipfile.ZipFile, member: _Payload, archive: Archive, progress: Progress | None
) -> None:
    info = zipfile.ZipInfo(member.name, date_time=FIXED_ZIP_TIME)
    info.create_system = 3  # Unix, so the permissions below mean what they say
    info.external_attr = 0o100644 << 16
    # complex data does not compress; text does
    info.compress_type = (
        zipfile.ZIP_STORED if member.name.endswith(".npy") else zipfile.ZIP_DEFLATED
    )
    info.file_size = member.size
    with bundle.open(info, "w", force_zip64=member.size >= 2**31) as out:
        if isinstance(member.source, bytes):
            out.write(member.source)
            return
        digest = hashlib.sha256()
        for chunk in _chunks(member.source):
            digest.update(chunk)
            out.write(chunk)
            if progress:
                progress(len(chunk))
    if digest.hexdigest() != member.sha256:
        relative = member.source.relative_to(archive.root)
        raise ArchiveError(
            f"{relative} differs from its recorded checksum; run 'qex-archive check'"
        )


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            yield chunk


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


def _ro_crate(description: dict[str, Any], payload: Sequence[_Payload]) -> dict[str, Any]:
    """An RO-Crate 1.2 description of the same files, for tools that know nothing of qex."""
    files = sorted(payload, key=lambda item: item.name)
    software = {
        "@id": "#qex-archive",
        "@type": "SoftwareApplication",
        "name": "qex-archive",
        "version": __version__,
    }
    experiments = sorted({run["experiment_name"] for run in description["runs"]})
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
            "identifier": f"urn:uuid:{description['bundle_id']}",
            "name": f"qex-archive bundle of {len(description['runs'])} runs",
            "description": description.get("note")
            or f"Quantum experiment runs ({', '.join(experiments)[:500]}) and density matrices.",
            "datePublished": description["created"],
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
            "endTime": description["created"],
        }
    )
    return {"@context": "https://w3id.org/ro/crate/1.2/context", "@graph": graph}


def _media_type(name: str) -> str:
    if name.endswith(".npy"):
        return "application/x-npy"
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".html"):
        return "text/html"
    if name.endswith(".svg"):
        return "image/svg+xml"
    return "application/octet-stream"
