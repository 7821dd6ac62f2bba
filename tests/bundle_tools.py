"""Building bundles by hand, valid or not, for the bundle tests."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from pathlib import Path

from qex_archive.bundle.format import BAG_INFO, BAGIT, MANIFEST, TAGMANIFEST

Members = dict[str, bytes]


def read_members(path: Path) -> Members:
    with zipfile.ZipFile(path) as bundle:
        return {info.filename: bundle.read(info) for info in bundle.infolist()}


def rebag(members: Members) -> Members:
    """Recompute manifests and Payload-Oxum so that only the intended defect remains."""
    payload = {name: data for name, data in members.items() if name.startswith("data/")}
    members = dict(members)
    members[MANIFEST] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(payload.items())
    ).encode()
    info = [
        line
        for line in members[BAG_INFO].decode().splitlines()
        if not line.startswith("Payload-Oxum")
    ]
    info.append(f"Payload-Oxum: {sum(map(len, payload.values()))}.{len(payload)}")
    members[BAG_INFO] = ("\n".join(sorted(info)) + "\n").encode()
    members[TAGMANIFEST] = "".join(
        f"{hashlib.sha256(members[name]).hexdigest()}  {name}\n"
        for name in sorted((BAGIT, BAG_INFO, MANIFEST))
    ).encode()
    return members


def write_zip(
    path: Path,
    members: Members | list[tuple[str, bytes]],
    *,
    mode: int = 0o100644,
    compress: int | None = None,
) -> Path:
    items = list(members.items()) if isinstance(members, dict) else members
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in items:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3
            info.external_attr = mode << 16
            info.compress_type = (
                compress
                if compress is not None
                else zipfile.ZIP_STORED
                if name.endswith(".npy")
                else zipfile.ZIP_DEFLATED
            )
            bundle.writestr(info, data)
    return path


def central_entries(raw: bytes) -> list[int]:
    """Offsets of the central directory entries of a small (non-ZIP64) ZIP."""
    end = raw.rindex(b"PK\x05\x06")
    count, _size, start = struct.unpack("<HII", raw[end + 10 : end + 20])
    offsets, position = [], start
    for _ in range(count):
        offsets.append(position)
        name_length, extra_length, comment_length = struct.unpack(
            "<HHH", raw[position + 28 : position + 34]
        )
        position += 46 + name_length + extra_length + comment_length
    return offsets


def entry_name(raw: bytes, offset: int) -> str:
    (name_length,) = struct.unpack("<H", raw[offset + 28 : offset + 30])
    return raw[offset + 46 : offset + 46 + name_length].decode()


def patch_central(raw: bytes, name: str, **fields: int) -> bytes:
    """Change fields of one central directory entry: flags, method, file_size, external_attr,
    header_offset."""
    layout = {
        "version_needed": (6, "<H"),
        "flags": (8, "<H"),
        "method": (10, "<H"),
        "compress_size": (20, "<I"),
        "file_size": (24, "<I"),
        "external_attr": (38, "<I"),
        "header_offset": (42, "<I"),
    }
    data = bytearray(raw)
    for offset in central_entries(raw):
        if entry_name(raw, offset) == name:
            for field, value in fields.items():
                position, fmt = layout[field]
                struct.pack_into(fmt, data, offset + position, value)
            return bytes(data)
    raise KeyError(name)


def npy(header: str, data: bytes) -> bytes:
    text = header + " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + data


def zip_bytes(members: Members) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return buffer.getvalue()
