"""The records of a bundle's ZIP file, each parsed and checked on its own: the end records
(ZIP64 included), a central directory entry, a local header and its agreement with the entry.
:mod:`.container` checks how the members lie together and reads their data.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from .format import (
    BAD_NAME,
    NOT_A_ZIP,
    NOT_REGULAR,
    OVERLAP,
    PAYLOAD_NAME,
    RATIO,
    SIZE_MISMATCH,
    TAG_FILES,
    TOO_LARGE,
    TOO_MANY_MEMBERS,
    TRAILING_DATA,
    UNSUPPORTED_ZIP,
    BundleError,
    Limits,
)
from .zipformat import (
    CENTRAL,
    CENTRAL_SIGNATURE,
    DEFLATED,
    END,
    END64,
    END64_RECORD_SIZE,
    END64_SIGNATURE,
    END_COMMENT_LENGTH_AT,
    END_SIGNATURE,
    EXTRA_HEADER,
    LOCAL,
    LOCAL_SIGNATURE,
    LOCATOR64,
    LOCATOR64_SIGNATURE,
    MADE_BY_UNIX,
    SAT16,
    SAT32,
    STORED,
    VERSION_ZIP64,
    ZIP64_EXTRA,
)

Pread = Callable[[int, int], bytes]
RATIO_FLOOR = 1 << 20  # small members compress well legitimately; bombs are large
MAX_NAME = 200  # longer than any name the format allows
MAX_EXTRA = 32  # one ZIP64 field with up to three values
_ALLOWED_FLAGS = 0x0800 | 0x0006  # UTF-8 names; deflate's speed hint
_S_IFMT, _S_IFREG = 0o170000, 0o100000
_DOS_DIRECTORY = 0x10


@dataclass(frozen=True, slots=True)
class Member:
    """One member, its headers checked: where its data lies and what it must inflate to."""

    name: str
    method: int
    crc: int
    compress_size: int
    file_size: int
    header_offset: int
    data_start: int

    @property
    def end(self) -> int:
        return self.data_start + self.compress_size


def pread_exact(pread: Pread, length: int, offset: int) -> bytes:
    data = pread(length, offset)
    if len(data) != length:
        raise BundleError(NOT_A_ZIP, "the file is shorter than its ZIP records say")
    return data


def end_records(pread: Pread, size: int, limits: Limits) -> tuple[int, int, int, int]:
    """``(entry count, directory size, directory offset, where the end records start)``."""
    if size < END.size:
        raise BundleError(NOT_A_ZIP, "too short to be a ZIP file")
    end = pread_exact(pread, END.size, size - END.size)
    signature, disk, directory_disk, on_disk, count, directory_size, directory_at, comment = (
        END.unpack(end)
    )
    if signature != END_SIGNATURE:
        tail = pread(min(size, 65_557), max(0, size - 65_557))
        if END_SIGNATURE in tail:
            raise BundleError(
                TRAILING_DATA,
                "data after the ZIP's end record (or a ZIP comment); the file was altered",
            )
        raise BundleError(NOT_A_ZIP, "no ZIP end record: not a ZIP file, or truncated")
    if comment or _commented_end_record(pread, size):
        raise BundleError(TRAILING_DATA, "ZIP comment present; bundles have none")
    if disk or directory_disk or on_disk != count:
        raise BundleError(UNSUPPORTED_ZIP, "split or spanned ZIP archives are not bundles")
    end_at = size - END.size
    locator_at = end_at - LOCATOR64.size
    if locator_at >= END64.size:
        locator = pread_exact(pread, LOCATOR64.size, locator_at)
        signature64, disk64, end64_at, disks = LOCATOR64.unpack(locator)
        if signature64 == LOCATOR64_SIGNATURE and end64_at == locator_at - END64.size:
            record = pread_exact(pread, END64.size, end64_at)
            fields = END64.unpack(record)
            if (
                fields[0] != END64_SIGNATURE
                or fields[1] != END64_RECORD_SIZE
                or disk64
                or disks != 1
                or fields[4]
                or fields[5]
                or fields[6] != fields[7]
            ):
                raise BundleError(UNSUPPORTED_ZIP, "malformed ZIP64 end record")
            count64, size64, at64 = fields[7], fields[8], fields[9]
            for small, large, saturated in (
                (count, count64, SAT16),
                (directory_size, size64, SAT32),
                (directory_at, at64, SAT32),
            ):
                if small not in (large, saturated):
                    raise BundleError(OVERLAP, "the ZIP64 and ZIP end records disagree")
            count, directory_size, directory_at, end_at = count64, size64, at64, end64_at
    if count == 0:
        raise BundleError(NOT_A_ZIP, "an empty ZIP file; a bundle holds its BagIt files")
    if count > limits.max_members:
        raise BundleError(TOO_MANY_MEMBERS, f"{count} members; raise --max-members to accept more")
    if directory_size > count * (CENTRAL.size + MAX_NAME + MAX_EXTRA):
        raise BundleError(OVERLAP, "the central directory is larger than its entries can be")
    if directory_at + directory_size > end_at:
        raise BundleError(OVERLAP, "the central directory runs into the end records")
    return count, directory_size, directory_at, end_at


# What a local header must repeat of its central directory entry: version needed, flags,
# method, time, date, CRC-32 and the name's bytes.
_HeaderFields = tuple[int, int, int, int, int, int, bytes]


def _commented_end_record(pread: Pread, size: int) -> bool:
    """Whether an earlier end record declares a comment reaching exactly to the end of the
    file, as other ZIP readers find it: then the last 22 bytes are a comment, not the end."""
    start = max(0, size - 65_557)
    tail = pread(size - start, start)
    position = tail.rfind(END_SIGNATURE, 0, len(tail) - END.size)
    while position >= 0:
        if position + END.size <= len(tail):
            (comment_length,) = struct.unpack_from("<H", tail, position + END_COMMENT_LENGTH_AT)
            if comment_length and position + END.size + comment_length == len(tail):
                return True
        position = tail.rfind(END_SIGNATURE, 0, position)
    return False


def central_entry(
    directory: bytes, position: int, limits: Limits
) -> tuple[Member, _HeaderFields, int]:
    if position + CENTRAL.size > len(directory):
        raise BundleError(OVERLAP, "the central directory holds fewer entries than it says")
    (
        signature,
        made_by,
        needed,
        flags,
        method,
        time,
        date,
        crc,
        compress_size,
        file_size,
        name_length,
        extra_length,
        comment_length,
        disk,
        _internal,
        external,
        offset,
    ) = CENTRAL.unpack_from(directory, position)
    if signature != CENTRAL_SIGNATURE:
        raise BundleError(
            OVERLAP,
            "no central directory entry where the end record says: bytes were added, "
            "removed or damaged",
        )
    start = position + CENTRAL.size
    stop = start + name_length + extra_length + comment_length
    if stop > len(directory):
        raise BundleError(OVERLAP, "a central directory entry runs past its end")
    raw_name = directory[start : start + name_length]
    name = _member_name(raw_name)
    if comment_length or disk:
        raise BundleError(UNSUPPORTED_ZIP, "has a file comment or lives on another disk", name)
    values = _zip64_values(
        directory[start + name_length : start + name_length + extra_length],
        [file_size == SAT32, compress_size == SAT32, offset == SAT32],
        name,
    )
    file_size = values.pop(0) if file_size == SAT32 else file_size
    compress_size = values.pop(0) if compress_size == SAT32 else compress_size
    offset = values.pop(0) if offset == SAT32 else offset
    if needed & 0xFF > VERSION_ZIP64:
        raise BundleError(
            UNSUPPORTED_ZIP, f"needs ZIP version {(needed & 0xFF) // 10}.{needed % 10}", name
        )
    _check_kind(name, flags, method, made_by, external)
    _check_caps(name, method, compress_size, file_size, limits)
    member = Member(name, method, crc, compress_size, file_size, offset, 0)
    return member, (needed, flags, method, time, date, crc, raw_name), stop


def _member_name(raw: bytes) -> str:
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError:
        name = ""
    if name not in TAG_FILES and not PAYLOAD_NAME.match(name):
        raise BundleError(BAD_NAME, "name is not one a bundle may contain", repr(raw)[:200])
    return name


def _zip64_values(extra: bytes, saturated: list[bool], name: str) -> list[int]:
    """The 64-bit values of a ZIP64 extra field, for the fields whose 32-bit value is
    saturated; any other extra field is refused."""
    values: list[int] = []
    position = 0
    while position < len(extra):
        if position + EXTRA_HEADER.size > len(extra):
            raise BundleError(UNSUPPORTED_ZIP, "malformed extra field", name)
        kind, length = EXTRA_HEADER.unpack_from(extra, position)
        body = extra[position + EXTRA_HEADER.size : position + EXTRA_HEADER.size + length]
        if len(body) != length:
            raise BundleError(UNSUPPORTED_ZIP, "malformed extra field", name)
        if kind != ZIP64_EXTRA or values or length % 8:
            raise BundleError(
                UNSUPPORTED_ZIP, f"extra field 0x{kind:04x} is not one bundles use", name
            )
        values = list(struct.unpack(f"<{length // 8}Q", body))
        position += EXTRA_HEADER.size + length
    if len(values) != sum(saturated):
        raise BundleError(UNSUPPORTED_ZIP, "ZIP64 extra field does not match the header", name)
    return values


def _check_kind(name: str, flags: int, method: int, made_by: int, external: int) -> None:
    if flags & 0x1:
        raise BundleError(UNSUPPORTED_ZIP, "is encrypted", name)
    if flags & ~_ALLOWED_FLAGS:
        raise BundleError(UNSUPPORTED_ZIP, f"uses ZIP flags 0x{flags:04x}", name)
    if method not in (STORED, DEFLATED):
        raise BundleError(
            UNSUPPORTED_ZIP, f"uses compression method {method}; only stored and deflate", name
        )
    mode = external >> 16
    unix = made_by & 0xFF00 == MADE_BY_UNIX
    if external & _DOS_DIRECTORY or (unix and mode and mode & _S_IFMT != _S_IFREG):
        raise BundleError(NOT_REGULAR, "is not a regular file (directory, symlink or device)", name)


def _check_caps(name: str, method: int, compress_size: int, file_size: int, limits: Limits) -> None:
    if file_size > limits.max_file_size:
        raise BundleError(TOO_LARGE, f"{file_size} bytes; raise --max-file-size to accept it", name)
    if method == STORED and compress_size != file_size:
        raise BundleError(SIZE_MISMATCH, "stored member whose sizes disagree", name)
    if file_size > RATIO_FLOOR and file_size > limits.max_ratio * max(compress_size, 1):
        raise BundleError(
            RATIO,
            f"inflates {file_size / max(compress_size, 1):.0f}x; raise --max-ratio to accept it",
            name,
        )


def with_local_header(pread: Pread, member: Member, central: _HeaderFields) -> Member:
    """The member with where its data starts, once its local header agrees with the central
    directory entry."""
    name = member.name
    header = pread(LOCAL.size + MAX_NAME + MAX_EXTRA, member.header_offset)
    if len(header) < LOCAL.size or header[:4] != LOCAL_SIGNATURE:
        raise BundleError(OVERLAP, "local header missing where the central directory points", name)
    (
        _signature,
        needed,
        flags,
        method,
        time,
        date,
        crc,
        compress_size,
        file_size,
        name_length,
        extra_length,
    ) = LOCAL.unpack_from(header)
    raw_name = header[LOCAL.size : LOCAL.size + name_length]
    extra = header[LOCAL.size + name_length : LOCAL.size + name_length + extra_length]
    if len(raw_name) != name_length or len(extra) != extra_length:
        raise BundleError(UNSUPPORTED_ZIP, "local header with an oversized name or extra", name)
    if extra:
        local64 = _zip64_values(extra, [True, True, False], name)
        if (file_size, compress_size) != (SAT32, SAT32):
            raise BundleError(UNSUPPORTED_ZIP, "ZIP64 extra field without ZIP64 sizes", name)
        file_size, compress_size = local64
    if (needed, flags, method, time, date, crc, raw_name) != central or (
        compress_size,
        file_size,
    ) != (
        member.compress_size,
        member.file_size,
    ):
        raise BundleError(
            OVERLAP, "local and central ZIP headers disagree (name, flags, sizes or CRC)", name
        )
    data_start = member.header_offset + LOCAL.size + name_length + extra_length
    return Member(
        name,
        member.method,
        member.crc,
        member.compress_size,
        member.file_size,
        member.header_offset,
        data_start,
    )
