"""A ZIP writer for bundles: deterministic bytes, no per-member overhead, ZIP64 when needed.

Every member is a regular Unix file (mode 0644) dated 1980-01-01 00:00, stored or
raw-deflated, with its sizes and CRC-32 in the local header (no data descriptors), so that
the same members in the same order always give the same file. ``zipfile``'s Python per
member costs more than the rest of writing a small member, and a bundle of 1,000 small runs has
2,000 of them (benchmarks/README.md, "Figures behind the code's choices").
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from .zipformat import (
    CENTRAL,
    CENTRAL_SIGNATURE,
    DEFLATED,
    END,
    END64,
    END64_RECORD_SIZE,
    END64_SIGNATURE,
    END_SIGNATURE,
    LOCAL,
    LOCAL_SIGNATURE,
    LOCATOR64,
    LOCATOR64_SIGNATURE,
    MADE_BY_UNIX,
    SAT16,
    SAT32,
    STORED,
    VERSION_DEFAULT,
    VERSION_ZIP64,
    zip64_extra,
)

DOS_DATE = (1 << 5) | 1  # 1980-01-01
DOS_TIME = 0
UNIX_REGULAR_0644 = 0o100644 << 16
ZIP64_AT = SAT32  # sizes and offsets from here on go in ZIP64 fields
ZIP64_COUNT_AT = SAT16  # as many members as this need the ZIP64 end record


def deflate(data: bytes) -> bytes:
    """Raw deflate at zlib's default level, as ZIP members hold it."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclass(frozen=True)
class _Entry:
    name: bytes
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int


class ZipWriter:
    """Members appended in the order given; :meth:`finish` writes the central directory."""

    FLUSH_AT = 1 << 20

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._directory = bytearray()  # central directory records, made as members are written
        self._count = 0
        self._offset = stream.tell()
        self._buffer = bytearray()  # small members are gathered and written a MiB at a time

    def _emit(self, data: bytes) -> None:
        self._buffer += data
        self._offset += len(data)
        if len(self._buffer) >= self.FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        self._stream.write(self._buffer)
        self._buffer.clear()

    def write(self, name: str, data: bytes, *, size: int, crc: int, deflated: bool) -> None:
        """Append a member whose (possibly deflated) bytes are all in ``data``."""
        method = DEFLATED if deflated else STORED
        entry = _Entry(name.encode("ascii"), method, crc, len(data), size, self._offset)
        self._emit(self._local_header(entry))
        self._emit(data)
        self._add_to_directory(entry)

    def write_stream(
        self, name: str, chunks: Iterable[bytes], *, size: int, deflated: bool
    ) -> None:
        """Append a member read chunk by chunk; ``size`` is the promised uncompressed size
        (it decides whether ZIP64 fields are needed) and :class:`ValueError` is raised when the
        chunks add up to something else. The local header is patched once the CRC is known."""
        self._flush()
        header_at = self._offset
        # deflate can grow incompressible input by a few bytes per 16 KiB block
        big = (size + size // 100 + 1024 if deflated else size) >= ZIP64_AT
        method = DEFLATED if deflated else STORED
        placeholder = _Entry(name.encode("ascii"), method, 0, 0, 0, header_at)
        header = self._local_header(placeholder, zip64=big)
        self._stream.write(header)
        crc = received = written = 0
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
            received += len(chunk)
            out = compressor.compress(chunk) if deflated else chunk
            self._stream.write(out)
            written += len(out)
        if deflated:
            tail = compressor.flush()
            self._stream.write(tail)
            written += len(tail)
        if received != size:
            raise ValueError(f"{name} holds {received} bytes, {size} were expected")
        entry = _Entry(placeholder.name, method, crc, written, received, header_at)
        if not big and written >= ZIP64_AT:
            raise ValueError(f"{name} grew past the ZIP64 limit when deflated")
        self._stream.seek(header_at)
        self._stream.write(self._local_header(entry, zip64=big))
        self._offset = header_at + len(header) + written
        self._stream.seek(self._offset)
        self._add_to_directory(entry)

    def _add_to_directory(self, entry: _Entry) -> None:
        extra = b""
        size, compressed, offset = entry.size, entry.compressed_size, entry.offset
        fields = []
        if size >= ZIP64_AT:
            fields.append(size)
            size = SAT32
        if compressed >= ZIP64_AT:
            fields.append(compressed)
            compressed = SAT32
        if offset >= ZIP64_AT:
            fields.append(offset)
            offset = SAT32
        if fields:
            extra = zip64_extra(fields)
        version = VERSION_ZIP64 if fields else VERSION_DEFAULT
        self._directory += (
            CENTRAL.pack(
                CENTRAL_SIGNATURE,
                MADE_BY_UNIX | version,
                version,
                0,
                entry.method,
                DOS_TIME,
                DOS_DATE,
                entry.crc,
                compressed,
                size,
                len(entry.name),
                len(extra),
                0,
                0,
                0,
                UNIX_REGULAR_0644,
                offset,
            )
            + entry.name
            + extra
        )
        self._count += 1

    def finish(self) -> None:
        """Write the central directory and end records; the writer is done after this."""
        directory_at = self._offset
        directory = self._directory
        count = self._count
        end_at = directory_at + len(directory)
        tail = b""
        if count >= ZIP64_COUNT_AT or directory_at >= ZIP64_AT or len(directory) >= ZIP64_AT:
            tail = END64.pack(
                END64_SIGNATURE, END64_RECORD_SIZE, MADE_BY_UNIX | VERSION_ZIP64, VERSION_ZIP64,
                0, 0, count, count, len(directory), directory_at,
            ) + LOCATOR64.pack(LOCATOR64_SIGNATURE, 0, end_at, 1)  # fmt: skip
        tail += END.pack(
            END_SIGNATURE,
            0,
            0,
            min(count, SAT16),
            min(count, SAT16),
            min(len(directory), SAT32),
            min(directory_at, SAT32),
            0,
        )
        self._flush()
        self._stream.write(directory)
        self._stream.write(tail)

    def _local_header(self, entry: _Entry, *, zip64: bool = False) -> bytes:
        if zip64 or entry.size >= ZIP64_AT or entry.compressed_size >= ZIP64_AT:
            extra = zip64_extra([entry.size, entry.compressed_size])
            sizes = (SAT32, SAT32)
            version = VERSION_ZIP64
        else:
            extra, sizes, version = b"", (entry.compressed_size, entry.size), VERSION_DEFAULT
        return (
            LOCAL.pack(
                LOCAL_SIGNATURE,
                version,
                0,
                entry.method,
                DOS_TIME,
                DOS_DATE,
                entry.crc,
                *sizes,
                len(entry.name),
                len(extra),
            )
            + entry.name
            + extra
        )
