"""The BagIt layer of a bundle (RFC 8493): tag files, manifests and the payload's Oxum.

Given the ZIP layer's checked members, this checks ``bagit.txt``, the tag manifest against
the tag files, the payload manifest against the members present (none missing, none extra)
and ``bag-info.txt`` (Payload-Oxum, the bundle format version), and hands the next layer the
manifest it can trust.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .container import Container
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


@dataclass(frozen=True)
class Bag:
    manifest: dict[str, str]  # payload member -> SHA-256
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
    tag_manifest = _parse_manifest(tags[TAGMANIFEST], TAGMANIFEST, prefix="")
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
    manifest = _parse_manifest(tags[MANIFEST], MANIFEST, prefix="data/")
    payload_names = set(members) - set(TAG_FILES)
    for name in sorted(set(manifest) - payload_names):
        raise BundleError(MISSING, "listed in manifest-sha256.txt but not in the bundle", name)
    for name in sorted(payload_names - set(manifest)):
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


def _parse_manifest(raw: bytes | bytearray, member: str, *, prefix: str) -> dict[str, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError(BAD_MANIFEST, "not UTF-8", member) from None
    entries: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        match = _MANIFEST_LINE.match(line)
        if not match or not match.group(2).startswith(prefix):
            raise BundleError(BAD_MANIFEST, f"line {number} is not 'SHA256  {prefix}path'", member)
        if match.group(2) in entries:
            raise BundleError(BAD_MANIFEST, f"line {number} lists {match.group(2)} again", member)
        entries[match.group(2)] = match.group(1)
    return entries


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
