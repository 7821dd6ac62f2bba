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
parsed here from the records themselves (APPNOTE 6.3; each record in :mod:`.zipstructure`),
and ``zlib`` does the inflating.
"""

from __future__ import annotations

import itertools
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from .format import (
    CHECKSUM,
    CHUNK,
    DUPLICATE_NAME,
    NOT_A_ZIP,
    OVERLAP,
    RATIO,
    SIZE_MISMATCH,
    TOO_LARGE,
    TRAILING_DATA,
    BundleError,
    Limits,
    fold,
)
from .zipformat import DEFLATED, END64_SIGNATURE, END_SIGNATURE
from .zipstructure import (
    RATIO_FLOOR,
    Member,
    Pread,
    central_entry,
    end_records,
    pread_exact,
    with_local_header,
)

__all__ = ["Container", "Member", "Members", "Pread", "open_container"]


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
        inflater = zlib.decompressobj(-15) if member.method == DEFLATED else None

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
    count, directory_size, directory_at, end_at = end_records(pread, size, limits)
    directory = pread_exact(pread, directory_size, directory_at)
    unordered = Members()
    folded: dict[str, str] = {}  # names that fold to another name: none a bundle may hold
    position = 0
    for _ in range(count):
        member, fields, position = central_entry(directory, position, limits)
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
        unordered._add(with_local_header(pread, member, fields))
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
        if between in (END_SIGNATURE, END64_SIGNATURE):
            raise BundleError(TRAILING_DATA, "data after the ZIP's end record: it was appended to")
        raise BundleError(OVERLAP, "bytes between the central directory and the end records")
    if total > RATIO_FLOOR and total > limits.max_ratio * size:
        raise BundleError(
            RATIO,
            f"the bundle inflates {total / size:.0f}x in all; raise --max-ratio to accept it",
        )
    return Container(pread, size, members)
