"""The BagIt layer of a bundle (RFC 8493): tag files, manifests and the payload's Oxum.

Given the ZIP layer's checked members, this checks ``bagit.txt``, the tag manifest against
the tag files, the payload manifest against the members present (none missing, none extra)
and ``bag-info.txt`` (Payload-Oxum, the bundle format version), and hands the next layer the
manifest it can trust.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .container import Container, Members
from .format import (
    BAD_BAG_INFO,
    BAD_BAGIT,
    BAD_MANIFEST,
    BAG_INFO,
    BAGIT,
    BAGIT_TXT,
    DESCRIPTION,
    EXTRA,
    FORMAT_VERSION,
    MANIFEST,
    MISSING,
    OXUM,
    READABLE_VERSIONS,
    RO_CRATE,
    TAG_FILES,
    TAGMANIFEST,
    TAGMANIFEST_MISMATCH,
    VERSION,
    BundleError,
)

MAX_TAG_FILE = 64 * 1024**2
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})[ \t]+(\S+)$")


class Manifest(Mapping[str, str]):
    """``manifest-sha256.txt``: the SHA-256 of each payload member, by name, kept as 32 bytes
    per member of the bundle beside the ZIP layer's table (no second copy of the names)."""

    def __init__(self, members: Members) -> None:
        self._members = members
        self._digests = bytearray(32 * len(members))
        self._listed = bytearray(len(members))
        self._count = 0

    def _add(self, name: str, sha256: str, number: int) -> None:
        row = self._members.row(name)
        if row is None:
            raise BundleError(MISSING, "listed in manifest-sha256.txt but not in the bundle", name)
        if self._listed[row]:
            raise BundleError(BAD_MANIFEST, f"line {number} lists {name} again", MANIFEST)
        self._listed[row] = 1
        self._digests[32 * row : 32 * row + 32] = bytes.fromhex(sha256)
        self._count += 1

    def listed(self, row: int) -> bool:
        """Whether the member at ``row`` of the ZIP layer's table is in the manifest."""
        return bool(self._listed[row])

    def digest(self, row: int) -> str:
        return self._digests[32 * row : 32 * row + 32].hex()

    def __getitem__(self, name: str) -> str:
        row = self._members.row(name)
        if row is None or not self._listed[row]:
            raise KeyError(name)
        return self.digest(row)

    def __contains__(self, name: object) -> bool:
        row = self._members.row(name) if isinstance(name, str) else None
        return row is not None and bool(self._listed[row])

    def __iter__(self) -> Iterator[str]:
        names = self._members
        return (names.name(row) for row, listed in enumerate(self._listed) if listed)

    def __len__(self) -> int:
        return self._count


@dataclass(frozen=True)
class Bag:
    manifest: Manifest  # payload member -> SHA-256
    info: dict[str, str]  # bag-info.txt labels


def read_bag(container: Container) -> Bag:
    members = container.members
    for name in TAG_FILES:
        if name not in members:
            raise BundleError(MISSING, "required BagIt tag file is missing", name)
    # the manifest may list every member: its cap follows the member count
    caps = {MANIFEST: min(MAX_TAG_FILE, 300 * (len(members) + 1))}
    tags = {
        name: container.read_small(members[name], caps.get(name, 64 * 1024)) for name in TAG_FILES
    }
    if tags[BAGIT] != BAGIT_TXT:
        raise BundleError(
            BAD_BAGIT, "must be exactly 'BagIt-Version: 1.0' and UTF-8 encoding", BAGIT
        )
    tag_manifest: dict[str, str] = {}
    for number, name, digest in _manifest_lines(tags[TAGMANIFEST], TAGMANIFEST, prefix=""):
        if name in tag_manifest:
            raise BundleError(BAD_MANIFEST, f"line {number} lists {name} again", TAGMANIFEST)
        tag_manifest[name] = digest
    if set(tag_manifest) != set(TAG_FILES) - {TAGMANIFEST}:
        raise BundleError(
            TAGMANIFEST_MISMATCH,
            "must list bagit.txt, bag-info.txt and manifest-sha256.txt",
            TAGMANIFEST,
        )
    for name, expected in tag_manifest.items():
        if hashlib.sha256(tags[name]).hexdigest() != expected:
            raise BundleError(
                TAGMANIFEST_MISMATCH,
                "checksum differs from tagmanifest-sha256.txt (stale tag manifest)",
                name,
            )
    manifest = Manifest(members)
    for number, name, digest in _manifest_lines(tags.pop(MANIFEST), MANIFEST, prefix="data/"):
        manifest._add(name, digest, number)
    for row, name in enumerate(members):
        if name not in TAG_FILES and not manifest.listed(row):
            raise BundleError(EXTRA, "in the bundle but not in manifest-sha256.txt", name)
    info = _parse_bag_info(tags[BAG_INFO])
    oxum = f"{sum(members[name].file_size for name in manifest)}.{len(manifest)}"
    if info.get("Payload-Oxum") != oxum:
        raise BundleError(
            OXUM,
            f"Payload-Oxum is {info.get('Payload-Oxum')!r}, the payload is {oxum}",
            BAG_INFO,
        )
    for required in (DESCRIPTION, RO_CRATE):
        if required not in manifest:
            raise BundleError(MISSING, "required bundle member is missing", required)
    return Bag(manifest, info)


def _manifest_lines(
    raw: bytes | bytearray, member: str, *, prefix: str
) -> Iterator[tuple[int, str, str]]:
    """``(line number, path, SHA-256)`` of each line, read one line at a time."""
    start, number = 0, 0
    while start < len(raw):
        end = raw.find(b"\n", start)
        end = len(raw) if end < 0 else end
        line, start, number = raw[start:end], end + 1, number + 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise BundleError(BAD_MANIFEST, "not UTF-8", member) from None
        if not text:
            continue
        match = _MANIFEST_LINE.match(text)
        if not match or not match.group(2).startswith(prefix):
            raise BundleError(BAD_MANIFEST, f"line {number} is not 'SHA256  {prefix}path'", member)
        yield number, match.group(2), match.group(1)


def _parse_bag_info(raw: bytes | bytearray) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(BAD_BAG_INFO, "not UTF-8", BAG_INFO) from None
    info: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.partition(":")
        if not sep or not key.strip() or key != key.strip():
            raise BundleError(BAD_BAG_INFO, f"line {number} is not 'Label: value'", BAG_INFO)
        if key in info:
            raise BundleError(BAD_BAG_INFO, f"label {key!r} appears twice", BAG_INFO)
        info[key] = value.strip()
    version = info.get("QEX-Bundle-Version")
    if version not in [str(v) for v in READABLE_VERSIONS]:
        newer = version is not None and version.isdigit() and int(version) > FORMAT_VERSION
        hint = " (upgrade with 'pip install --upgrade qex-archive')" if newer else ""
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise BundleError(
            VERSION,
            f"QEX-Bundle-Version is {str(version)[:40]!r}; this qex-archive reads "
            f"versions {readable}{hint}",
            BAG_INFO,
        )
    return info
