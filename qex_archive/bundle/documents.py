"""The members a bundle describes itself with: ``qex-bundle.json``, the RO-Crate, the BagIt tag
files. Each is produced in canonical JSON or text, byte for byte the same for the same runs,
and streamed from the spooled run records and file list (see :mod:`.records`), so that its
size never needs the runs in memory at once.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from .. import __version__
from ..errors import InvalidInput
from .format import (
    BAG_INFO,
    BAGIT,
    BAGIT_TXT,
    DESCRIPTION,
    MANIFEST,
    RO_CRATE,
    TAGMANIFEST,
    canonical_json,
)
from .records import (
    FileGroup,
    Gathered,
    Payload,
    Spool,
    content_hash,
    crate_entry,
    crate_part,
    manifest_line,
)

BUNDLE_NAMESPACE = uuid.UUID("6f7e1a52-4f0e-5c3b-9a51-7b0c7e2f9d10")


def creation_time(gathered: Gathered) -> str:
    """``SOURCE_DATE_EPOCH`` when set, else the newest run's time, to the second, in UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    try:
        timestamp = float(epoch) if epoch else gathered.newest
    except ValueError:
        raise InvalidInput(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix timestamp") from None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


def format_version(gathered: Gathered, report: Payload | None) -> int:
    """Format 2 only when a run has tags or notes or a report is packed: other bundles stay
    byte for byte what format 1 wrote, and readers of format 1 still read them."""
    return 2 if report is not None or gathered.annotated else 1


def description(
    gathered: Gathered, created: str, note: str | None, version: int, report: Payload | None
) -> tuple[Payload, str]:
    """``qex-bundle.json`` (streamed from the spooled records) and the bundle ID, a uuid5 of
    the records and the note."""
    bundle_id = str(uuid.uuid5(BUNDLE_NAMESPACE, content_hash(gathered, canonical_json(note))))
    head: dict[str, Any] = {
        "format": "qex-bundle",
        "format_version": version,
        "bundle_id": bundle_id,
        "created": created,
        "creator": {
            "software": "qex-archive",
            "version": __version__,
            "plugins": dict(sorted(gathered.plugins.items())),
        },
    }
    if note:
        head["note"] = note
    if report is not None:
        head["report"] = {"path": report.name, "size": report.size, "sha256": report.sha256}
    # "runs" sorts after every other key, so the records go last
    parts = _Parts(canonical_json(head)[:-2] + b',"runs":', gathered.records, b"}\n")
    return parts.payload(DESCRIPTION), bundle_id


def ro_crate(
    bundle_id: str,
    created: str,
    note: str | None,
    gathered: Gathered,
    documents: list[Payload],
) -> Payload:
    """An RO-Crate 1.2 description of the same files, for tools that know nothing of qex,
    spooled as it is written (it lists every file twice)."""
    experiments = ", ".join(sorted(gathered.experiments))[:500]
    root = {
        "@id": "./",
        "@type": "Dataset",
        "identifier": f"urn:uuid:{bundle_id}",
        "name": f"qex-archive bundle of {gathered.runs} runs",
        "description": note or f"Quantum experiment runs ({experiments}) and density matrices.",
        "datePublished": created,
        "hasPart": [],
    }
    before_parts, after_parts = _item(root).split(b'"hasPart":[]')
    software = {
        "@id": "#qex-archive",
        "@type": "SoftwareApplication",
        "name": "qex-archive",
        "version": __version__,
    }
    metadata = {
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": {"@id": "https://w3id.org/ro/crate/1.2"},
        "about": {"@id": "./"},
    }
    pack = {
        "@id": "#pack",
        "@type": "CreateAction",
        "instrument": {"@id": "#qex-archive"},
        "result": {"@id": "./"},
        "endTime": created,
    }
    spool = Spool()
    spool.write(b'{"@context":"https://w3id.org/ro/crate/1.2/context","@graph":[')
    spool.write(_item(metadata) + b"," + before_parts + b'"hasPart":[')
    _listed(spool, gathered, documents, lambda group: group.parts, crate_part)
    spool.write(b"]" + after_parts + b"," + _item(software) + b",")
    _listed(spool, gathered, documents, lambda group: group.entries, crate_entry)
    spool.write(b"," + _item(pack) + b"]}\n")
    return _Parts(b"", spool, b"").payload(RO_CRATE)


def in_order(gathered: Gathered, documents: list[Payload]) -> Iterator[Payload]:
    """The payload in member order: the files of the runs, and ``documents`` (qex-bundle.json,
    the report, the RO-Crate) where their names sort."""
    for part in _sorted_parts(gathered, documents):
        if isinstance(part, FileGroup):
            yield from part.payload()
        else:
            yield part


def _sorted_parts(gathered: Gathered, documents: list[Payload]) -> list[FileGroup | Payload]:
    """The two folders of run files and the documents, in the order their names sort."""
    parts: list[tuple[str, FileGroup | Payload]] = [
        ("data/artifacts/", gathered.artifacts),
        ("data/results/", gathered.results),
        *((item.name, item) for item in documents),
    ]
    return [part for _, part in sorted(parts, key=lambda pair: pair[0])]


def _listed(
    spool: Spool,
    gathered: Gathered,
    documents: list[Payload],
    spooled: Callable[[FileGroup], Spool],
    entry: Callable[[Payload], dict[str, Any]],
) -> None:
    """One comma-separated list of every file's entry, in member order."""
    first = True
    for part in _sorted_parts(gathered, documents):
        if isinstance(part, FileGroup) and not part.count:
            continue
        if not first:
            spool.write(b",")
        first = False
        if isinstance(part, FileGroup):
            for chunk in spooled(part).chunks():
                spool.write(chunk)
        else:
            spool.write(_item(entry(part)))


def tag_files(
    gathered: Gathered, documents: list[Payload], bundle_id: str, created: str, version: int
) -> tuple[Payload, Payload, Payload, Payload]:
    """``bag-info.txt``, ``bagit.txt``, the payload manifest (spooled) and the tag manifest."""
    manifest = Spool()
    for part in _sorted_parts(gathered, documents):
        if isinstance(part, FileGroup):
            for chunk in part.manifest.chunks():
                manifest.write(chunk)
        else:
            manifest.write(manifest_line(part))
    manifest_payload = _Parts(b"", manifest, b"").payload(MANIFEST)
    total = gathered.payload_bytes + sum(item.size for item in documents)
    oxum = f"{total}.{gathered.files + len(documents)}"
    bag_info = (
        f"Bag-Software-Agent: qex-archive {__version__}\n"
        f"Bagging-Date: {created[:10]}\n"
        f"External-Identifier: urn:uuid:{bundle_id}\n"
        f"Payload-Oxum: {oxum}\n"
        f"QEX-Bundle-Version: {version}\n"
    ).encode()
    sums = {
        BAGIT: hashlib.sha256(BAGIT_TXT).hexdigest(),
        BAG_INFO: hashlib.sha256(bag_info).hexdigest(),
        MANIFEST: manifest_payload.sha256,
    }
    tagmanifest = "".join(f"{sums[name]}  {name}\n" for name in sorted(sums)).encode()
    return (
        bytes_payload(BAG_INFO, bag_info),
        bytes_payload(BAGIT, BAGIT_TXT),
        manifest_payload,
        bytes_payload(TAGMANIFEST, tagmanifest),
    )


def bytes_payload(name: str, content: bytes) -> Payload:
    return Payload(name, len(content), hashlib.sha256(content).hexdigest(), content)


class _Parts:
    """A member made of a head, a spool and a tail, with its size and SHA-256."""

    def __init__(self, head: bytes, body: Spool, tail: bytes) -> None:
        self.head, self.body, self.tail = head, body, tail

    def chunks(self) -> Iterator[bytes]:
        yield self.head
        yield from self.body.chunks()
        yield self.tail

    def payload(self, name: str) -> Payload:
        digest = self.body.digest.copy()  # the spool's, when there is nothing around it
        if self.head or self.tail:
            digest = hashlib.sha256()
            for chunk in self.chunks():
                digest.update(chunk)
        size = len(self.head) + self.body.size + len(self.tail)
        return Payload(name, size, digest.hexdigest(), _Streamed(self))


class _Streamed(Spool):
    """A spool-like view of :class:`_Parts`, for the ZIP writer to stream."""

    def __init__(self, parts: _Parts) -> None:  # no file of its own
        self._parts = parts
        self.size = len(parts.head) + parts.body.size + len(parts.tail)

    def chunks(self) -> Iterator[bytes]:
        return self._parts.chunks()

    def close(self) -> None:
        self._parts.body.close()


def _item(value: dict[str, Any]) -> bytes:
    return canonical_json(value)[:-1]
