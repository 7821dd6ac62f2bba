"""The ZIP layer of a bundle, read closed-world: every byte of the file accounted for.

A bundle is accepted at this layer only when the file is exactly: local header, name, extra
field and data of each member, back to back from offset 0; then the central directory; then
(for ZIP64) the ZIP64 end record and its locator; then the end record, with no comment. Local
and central headers must agree on name, flags, method, time, sizes and CRC-32; only the ZIP64
extra field is allowed (a Unicode Path field, say, would make other tools extract under
another name); no encryption, no data descriptors; and every member's CRC-32 is checked as
it is read, stored members included. Counts and sizes from the end record are checked
against the limits before the central directory is read.

``zipfile`` accepts gaps, disagreeing headers, lying entry counts and foreign extra fields,
and reads the whole central directory before any limit can be applied; so the structure is
parsed here from the records themselves (APPNOTE 6.3), and ``zlib`` does the inflating.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from .format import (
    BAD_NAME,
    CHECKSUM,
    DUPLICATE_NAME,
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
    fold,
)

CHUNK = 1 << 20
Pread = Callable[[int, int], bytes]
RATIO_FLOOR = 1 << 20  # small members compress well legitimately; bombs are large
MAX_NAME = 200  # longer than any name the format allows
MAX_EXTRA = 32  # one ZIP64 field with up to three values
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_ZIP64_EXTRA = 0x0001
_ALLOWED_FLAGS = 0x0800 | 0x0006  # UTF-8 names; deflate's speed hint
_STORED, _DEFLATED = 0, 8
_SAT16, _SAT32 = 0xFFFF, 0xFFFFFFFF
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


class Members(Mapping[str, Member]):
    """The checked members by name, in the order they lie in the file, held compactly (a
    bundle of 100,000 runs has 200,000 members: about 140 bytes each here, 700 as objects)."""

    _FIELDS = 6  # method, crc, compress_size, file_size, header_offset, data_start

    def __init__(self, members: Iterable[Member] = ()) -> None:
        self._row: dict[str, int] = {}
        self._names: list[str] = []
        self._fields = array("q")
        for member in members:
            self._add(member)

    def _add(self, member: Member) -> None:
        self._row[member.name] = len(self._names)
        self._names.append(member.name)
        self._fields.extend(
            (
                member.method,
                member.crc,
                member.compress_size,
                member.file_size,
                member.header_offset,
                member.data_start,
            )
        )

    def in_file_order(self) -> Members:
        """These members ordered by where they lie (as they are already, when the central
        directory lists them in file order, as bundle writers do)."""
        offsets = self._fields[4 :: self._FIELDS]  # header_offset's place among the fields
        if all(a < b for a, b in itertools.pairwise(offsets)):
            return self
        order = sorted(range(len(self._names)), key=offsets.__getitem__)
        return Members(self.at(row) for row in order)

    def __getitem__(self, name: str) -> Member:
        return self.at(self._row[name])

    def at(self, row: int) -> Member:
        """The member at position ``row`` in the file."""
        start = row * self._FIELDS
        return Member(self._names[row], *self._fields[start : start + self._FIELDS])

    def row(self, name: str) -> int | None:
        """The member's position in the file; ``None`` for a name not in the bundle."""
        return self._row.get(name)

    def name(self, row: int) -> str:
        return self._names[row]

    def __contains__(self, name: object) -> bool:
        return name in self._row

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@dataclass(frozen=True)
class Container:
    """The checked members of a bundle file, by name, in the order they lie in the file."""

    pread: Pread  # (length, offset) -> bytes: os.pread of a file, or range reads of a URL
    size: int
    members: Members

    def read(
        self, member: Member, progress: Callable[[int], None] | None = None
    ) -> Iterator[bytes]:
        """The member's inflated bytes in chunks; :class:`BundleError` when the data is
        corrupt, inflates to another size than declared or fails its CRC-32. ``progress`` is
        told of the bundle's bytes (compressed) as they are read."""
        name = member.name
        crc = produced = 0
        position, left = member.data_start, member.compress_size
        inflater = zlib.decompressobj(-15) if member.method == _DEFLATED else None

        def checked(piece: bytes) -> bytes:
            nonlocal crc, produced
            produced += len(piece)
            if produced > member.file_size:  # a bomb stops at its declared size
                raise BundleError(SIZE_MISMATCH, "inflates to more than its declared size", name)
            crc = zlib.crc32(piece, crc)
            return piece

        try:
            while left:
                data = self.pread(min(CHUNK, left), position)
                if not data:
                    raise BundleError(SIZE_MISMATCH, "the file ends inside this member", name)
                position += len(data)
                left -= len(data)
                if progress:
                    progress(len(data))
                if inflater is None:
                    yield checked(data)
                    continue
                while True:
                    piece = inflater.decompress(data, CHUNK)  # bounded output
                    if piece:
                        yield checked(piece)
                    data = inflater.unconsumed_tail
                    if not data and len(piece) < CHUNK:
                        break
                if inflater.eof and (inflater.unused_data or left):
                    raise BundleError(OVERLAP, "bytes after the member's deflate data", name)
            if inflater is not None:
                tail = inflater.flush()
                if tail:
                    yield checked(tail)
                if not inflater.eof:
                    raise BundleError(CHECKSUM, "corrupt ZIP data (deflate stream cut short)", name)
        except zlib.error as exc:
            raise BundleError(CHECKSUM, f"corrupt ZIP data ({exc})", name) from None
        except OSError as exc:
            raise BundleError(NOT_A_ZIP, f"cannot read the bundle ({exc.strerror})") from None
        if produced != member.file_size:
            raise BundleError(
                SIZE_MISMATCH, f"holds {produced} bytes, declared {member.file_size}", name
            )
        if crc != member.crc:
            raise BundleError(CHECKSUM, "CRC-32 differs from the ZIP headers: corrupt data", name)

    def read_small(self, member: Member, cap: int) -> bytearray:
        """A whole member in memory (one copy: the chunks are appended as they come)."""
        if member.file_size > cap:
            raise BundleError(
                TOO_LARGE, f"{member.file_size} bytes is too large for this member", member.name
            )
        data = bytearray()
        for chunk in self.read(member):
            data += chunk
        return data


def open_container(pread: Pread, size: int, limits: Limits) -> Container:
    """Check the ZIP structure of the ``size`` bytes that ``pread`` reads."""
    count, directory_size, directory_at, end_at = _end_records(pread, size, limits)
    directory = _pread_exact(pread, directory_size, directory_at)
    unordered = Members()
    folded: dict[str, str] = {}  # names that fold to another name: none a bundle may hold
    position = 0
    for _ in range(count):
        member, fields, position = _central_entry(directory, position, limits)
        name = member.name
        if name in unordered:
            raise BundleError(DUPLICATE_NAME, "appears twice in the ZIP", name)
        key = fold(name)
        other = folded.get(key) or (key if key != name and key in unordered else None)
        if other is not None:
            raise BundleError(
                DUPLICATE_NAME, f"collides with {other!r} on case-insensitive file systems", name
            )
        if key != name:
            folded[key] = name
        unordered._add(_with_local_header(pread, member, fields))
    del directory
    if position != directory_size:
        raise BundleError(OVERLAP, "the central directory holds more than its entry count says")
    members = unordered.in_file_order()
    del unordered
    expected = 0
    total = 0
    for row in range(len(members)):
        member = members.at(row)
        if member.header_offset != expected:
            what = (
                "a gap or hidden bytes" if member.header_offset > expected else "overlapping data"
            )
            raise BundleError(OVERLAP, f"{what} before this member", member.name)
        expected = member.end
        total += member.file_size
        if total > limits.max_total_size:
            raise BundleError(
                TOO_LARGE, "the members add up to more than allowed; raise --max-total-size"
            )
    if expected != directory_at:
        raise BundleError(OVERLAP, "bytes between the last member and the central directory")
    if directory_at + directory_size != end_at:
        between = pread(4, directory_at + directory_size)
        if between in (b"PK\x05\x06", b"PK\x06\x06"):
            raise BundleError(TRAILING_DATA, "data after the ZIP's end record: it was appended to")
        raise BundleError(OVERLAP, "bytes between the central directory and the end records")
    if total > RATIO_FLOOR and total > limits.max_ratio * size:
        raise BundleError(
            RATIO,
            f"the bundle inflates {total / size:.0f}x in all; raise --max-ratio to accept it",
        )
    return Container(pread, size, members)


def _pread_exact(pread: Pread, length: int, offset: int) -> bytes:
    data = pread(length, offset)
    if len(data) != length:
        raise BundleError(NOT_A_ZIP, "the file is shorter than its ZIP records say")
    return data


def _end_records(pread: Pread, size: int, limits: Limits) -> tuple[int, int, int, int]:
    """``(entry count, directory size, directory offset, where the end records start)``."""
    if size < _END.size:
        raise BundleError(NOT_A_ZIP, "too short to be a ZIP file")
    end = _pread_exact(pread, _END.size, size - _END.size)
    signature, disk, directory_disk, on_disk, count, directory_size, directory_at, comment = (
        _END.unpack(end)
    )
    if signature != b"PK\x05\x06":
        tail = pread(min(size, 65_557), max(0, size - 65_557))
        if b"PK\x05\x06" in tail:
            raise BundleError(
                TRAILING_DATA,
                "data after the ZIP's end record (or a ZIP comment); the file was altered",
            )
        raise BundleError(NOT_A_ZIP, "no ZIP end record: not a ZIP file, or truncated")
    if comment or _commented_end_record(pread, size):
        raise BundleError(TRAILING_DATA, "ZIP comment present; bundles have none")
    if disk or directory_disk or on_disk != count:
        raise BundleError(UNSUPPORTED_ZIP, "split or spanned ZIP archives are not bundles")
    end_at = size - _END.size
    locator_at = end_at - _LOCATOR64.size
    if locator_at >= _END64.size:
        locator = _pread_exact(pread, _LOCATOR64.size, locator_at)
        signature64, disk64, end64_at, disks = _LOCATOR64.unpack(locator)
        if signature64 == b"PK\x06\x07" and end64_at == locator_at - _END64.size:
            record = _pread_exact(pread, _END64.size, end64_at)
            fields = _END64.unpack(record)
            if (
                fields[0] != b"PK\x06\x06"
                or fields[1] != _END64.size - 12
                or disk64
                or disks != 1
                or fields[4]
                or fields[5]
                or fields[6] != fields[7]
            ):
                raise BundleError(UNSUPPORTED_ZIP, "malformed ZIP64 end record")
            count64, size64, at64 = fields[7], fields[8], fields[9]
            for small, large, saturated in (
                (count, count64, _SAT16),
                (directory_size, size64, _SAT32),
                (directory_at, at64, _SAT32),
            ):
                if small not in (large, saturated):
                    raise BundleError(OVERLAP, "the ZIP64 and ZIP end records disagree")
            count, directory_size, directory_at, end_at = count64, size64, at64, end64_at
    if count == 0:
        raise BundleError(NOT_A_ZIP, "an empty ZIP file; a bundle holds its BagIt files")
    if count > limits.max_members:
        raise BundleError(TOO_MANY_MEMBERS, f"{count} members; raise --max-members to accept more")
    if directory_size > count * (_CENTRAL.size + MAX_NAME + MAX_EXTRA):
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
    position = tail.rfind(b"PK\x05\x06", 0, len(tail) - _END.size)
    while position >= 0:
        if position + _END.size <= len(tail):
            (comment_length,) = struct.unpack_from("<H", tail, position + 20)
            if comment_length and position + _END.size + comment_length == len(tail):
                return True
        position = tail.rfind(b"PK\x05\x06", 0, position)
    return False


def _central_entry(
    directory: bytes, position: int, limits: Limits
) -> tuple[Member, _HeaderFields, int]:
    if position + _CENTRAL.size > len(directory):
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
    ) = _CENTRAL.unpack_from(directory, position)
    if signature != b"PK\x01\x02":
        raise BundleError(
            OVERLAP,
            "no central directory entry where the end record says: bytes were added, "
            "removed or damaged",
        )
    start = position + _CENTRAL.size
    stop = start + name_length + extra_length + comment_length
    if stop > len(directory):
        raise BundleError(OVERLAP, "a central directory entry runs past its end")
    raw_name = directory[start : start + name_length]
    name = _member_name(raw_name)
    if comment_length or disk:
        raise BundleError(UNSUPPORTED_ZIP, "has a file comment or lives on another disk", name)
    values = _zip64_values(
        directory[start + name_length : start + name_length + extra_length],
        [file_size == _SAT32, compress_size == _SAT32, offset == _SAT32],
        name,
    )
    file_size = values.pop(0) if file_size == _SAT32 else file_size
    compress_size = values.pop(0) if compress_size == _SAT32 else compress_size
    offset = values.pop(0) if offset == _SAT32 else offset
    if needed & 0xFF > 45:
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
        if position + 4 > len(extra):
            raise BundleError(UNSUPPORTED_ZIP, "malformed extra field", name)
        kind, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if len(body) != length:
            raise BundleError(UNSUPPORTED_ZIP, "malformed extra field", name)
        if kind != _ZIP64_EXTRA or values or length % 8:
            raise BundleError(
                UNSUPPORTED_ZIP, f"extra field 0x{kind:04x} is not one bundles use", name
            )
        values = list(struct.unpack(f"<{length // 8}Q", body))
        position += 4 + length
    if len(values) != sum(saturated):
        raise BundleError(UNSUPPORTED_ZIP, "ZIP64 extra field does not match the header", name)
    return values


def _check_kind(name: str, flags: int, method: int, made_by: int, external: int) -> None:
    if flags & 0x1:
        raise BundleError(UNSUPPORTED_ZIP, "is encrypted", name)
    if flags & ~_ALLOWED_FLAGS:
        raise BundleError(UNSUPPORTED_ZIP, f"uses ZIP flags 0x{flags:04x}", name)
    if method not in (_STORED, _DEFLATED):
        raise BundleError(
            UNSUPPORTED_ZIP, f"uses compression method {method}; only stored and deflate", name
        )
    mode = external >> 16
    unix = made_by >> 8 == 3
    if external & _DOS_DIRECTORY or (unix and mode and mode & _S_IFMT != _S_IFREG):
        raise BundleError(NOT_REGULAR, "is not a regular file (directory, symlink or device)", name)


def _check_caps(name: str, method: int, compress_size: int, file_size: int, limits: Limits) -> None:
    if file_size > limits.max_file_size:
        raise BundleError(TOO_LARGE, f"{file_size} bytes; raise --max-file-size to accept it", name)
    if method == _STORED and compress_size != file_size:
        raise BundleError(SIZE_MISMATCH, "stored member whose sizes disagree", name)
    if file_size > RATIO_FLOOR and file_size > limits.max_ratio * max(compress_size, 1):
        raise BundleError(
            RATIO,
            f"inflates {file_size / max(compress_size, 1):.0f}x; raise --max-ratio to accept it",
            name,
        )


def _with_local_header(pread: Pread, member: Member, central: _HeaderFields) -> Member:
    """The member with where its data starts, once its local header agrees with the central
    directory entry."""
    name = member.name
    header = pread(_LOCAL.size + MAX_NAME + MAX_EXTRA, member.header_offset)
    if len(header) < _LOCAL.size or header[:4] != b"PK\x03\x04":
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
    ) = _LOCAL.unpack_from(header)
    raw_name = header[_LOCAL.size : _LOCAL.size + name_length]
    extra = header[_LOCAL.size + name_length : _LOCAL.size + name_length + extra_length]
    if len(raw_name) != name_length or len(extra) != extra_length:
        raise BundleError(UNSUPPORTED_ZIP, "local header with an oversized name or extra", name)
    if extra:
        local64 = _zip64_values(extra, [True, True, False], name)
        if (file_size, compress_size) != (_SAT32, _SAT32):
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
    data_start = member.header_offset + _LOCAL.size + name_length + extra_length
    return Member(
        name,
        member.method,
        member.crc,
        member.compress_size,
        member.file_size,
        member.header_offset,
        data_start,
    )
