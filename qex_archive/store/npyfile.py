"""The ``.npy`` file format, written and read without numpy.

Reading parses the header strictly (magic, version, a literal dict with exactly the three
keys numpy writes) so a file can be checked, and an untrusted one refused, before any
array is allocated. Only the archive's one layout is produced: ``<c16`` in C order.
"""

from __future__ import annotations

import ast
import os
import re
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import NpyFormatError as NpyFormatError

MAGIC = b"\x93NUMPY"
ALIGNMENT = 64
MAX_HEADER_BYTES = 4096
COMPLEX128 = "<c16"
ITEM_SIZES = {"<c16": 16, "<c8": 8, "<f8": 8, "<f4": 4}


@dataclass(frozen=True)
class NpyHeader:
    descr: str
    fortran_order: bool
    shape: tuple[int, ...]
    data_offset: int

    @property
    def data_size(self) -> int:
        """Bytes of array data the header promises (for the dtypes in ITEM_SIZES)."""
        count = 1
        for n in self.shape:
            count *= n
        return count * ITEM_SIZES[self.descr]


def header_bytes(shape: tuple[int, ...], descr: str = COMPLEX128) -> bytes:
    """A version 1.0 header for a C-ordered array, padded as numpy pads it."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    unpadded = len(MAGIC) + 4 + len(text) + 1
    text += " " * (-unpadded % ALIGNMENT) + "\n"
    return MAGIC + b"\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def read_header(stream: BinaryIO) -> NpyHeader:
    """Parse the header at the start of ``stream``; raise :class:`NpyFormatError` if malformed."""
    prefix = stream.read(len(MAGIC) + 2)
    if len(prefix) < len(MAGIC) + 2 or prefix[: len(MAGIC)] != MAGIC:
        raise NpyFormatError("not a .npy file (bad magic bytes)")
    major, minor = prefix[len(MAGIC)], prefix[len(MAGIC) + 1]
    if (major, minor) == (1, 0):
        size_bytes, encoding = stream.read(2), "latin1"
        length_format = "<H"
    elif (major, minor) in ((2, 0), (3, 0)):
        size_bytes, encoding = stream.read(4), "latin1" if major == 2 else "utf-8"
        length_format = "<I"
    else:
        raise NpyFormatError(f"unsupported .npy version {major}.{minor}")
    if len(size_bytes) != struct.calcsize(length_format):
        raise NpyFormatError("truncated .npy header")
    (header_length,) = struct.unpack(length_format, size_bytes)
    if header_length > MAX_HEADER_BYTES:
        raise NpyFormatError(f".npy header of {header_length} bytes is larger than allowed")
    raw = stream.read(header_length)
    if len(raw) != header_length:
        raise NpyFormatError("truncated .npy header")
    fields = _fields_of_plain_header(raw)
    if fields is None:
        try:
            fields = ast.literal_eval(raw.decode(encoding))
        except (ValueError, SyntaxError, UnicodeDecodeError, MemoryError, RecursionError):
            raise NpyFormatError(".npy header is not a Python literal") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise NpyFormatError(".npy header must hold exactly descr, fortran_order and shape")
    descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not isinstance(descr, str):
        raise NpyFormatError(f".npy dtype {descr!r} is not a simple dtype")
    if not isinstance(fortran, bool):
        raise NpyFormatError(".npy fortran_order must be True or False")
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise NpyFormatError(f".npy shape {shape!r} is not a tuple of non-negative integers")
    return NpyHeader(descr, fortran, shape, len(MAGIC) + 2 + len(size_bytes) + header_length)


# The header numpy writes for a 2-D array, matched without compiling Python (literal_eval is
# slow enough to matter for check at a million files). Anything else, however unusual, still
# goes through literal_eval.
_PLAIN_HEADER = re.compile(
    rb"\{'descr': '([<>|=]?[a-zA-Z][a-zA-Z0-9]{0,8})', 'fortran_order': (True|False), "
    rb"'shape': \((0|[1-9][0-9]{0,17}), (0|[1-9][0-9]{0,17})\), \} *\n?"
)


def _fields_of_plain_header(raw: bytes) -> dict[str, object] | None:
    match = _PLAIN_HEADER.fullmatch(raw)
    if match is None:
        return None
    descr, fortran, rows, columns = match.groups()
    return {
        "descr": descr.decode("ascii"),
        "fortran_order": fortran == b"True",
        "shape": (int(rows), int(columns)),
    }


def check_density_matrix_header(header: NpyHeader) -> None:
    """Refuse anything but what the archive writes: ``<c16``, C order, square, 2-D."""
    if header.descr != COMPLEX128:
        raise NpyFormatError(f".npy dtype is {header.descr!r}, expected '{COMPLEX128}'")
    if header.fortran_order:
        raise NpyFormatError(".npy array is in Fortran order, expected C order")
    if len(header.shape) != 2 or header.shape[0] != header.shape[1] or header.shape[0] < 1:
        raise NpyFormatError(f".npy shape {header.shape} is not a square matrix")


def check_data_size(header: NpyHeader, file_size: int) -> None:
    """The file holds exactly the bytes its header promises (not truncated, not padded)."""
    if header.data_offset + header.data_size != file_size:
        raise NpyFormatError(
            f".npy data size does not match its header ({file_size} bytes, the header "
            f"promises {header.data_offset + header.data_size}): truncated or padded"
        )


MAP_FROM = 1 << 20  # smaller matrices are read: a memory map holds a file descriptor


def map_density_matrix(stream: BinaryIO) -> Any:
    """A read-only array of the archive's own layout, after checking the header and the
    file's size, so that a damaged file is refused before numpy sees it. Matrices of a MiB or
    more are memory-mapped; smaller ones are read, so that looking at thousands of runs does
    not hold thousands of open files."""
    import numpy as np

    header = read_header(stream)
    check_density_matrix_header(header)
    check_data_size(header, os.fstat(stream.fileno()).st_size)
    if header.data_size < MAP_FROM:
        stream.seek(header.data_offset)
        array = np.frombuffer(stream.read(header.data_size), dtype=np.complex128)
        return array.reshape(header.shape)  # read-only: frombuffer of bytes
    return np.memmap(
        stream, dtype=np.complex128, mode="r", offset=header.data_offset, shape=header.shape
    )


def load_user_npy(path: Any) -> Any:
    """An array from a ``.npy`` file a user names (``record STATE.npy``), in any dtype numpy
    writes, after checking that the file holds the bytes its header promises: a 128-byte file
    claiming 149 GiB is refused before anything is allocated."""
    import numpy as np

    from ..errors import InvalidInput

    try:
        with open(path, "rb") as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            if dtype.hasobject:
                raise ValueError("it holds Python objects (pickle), which are never loaded")
            count = 1
            for n in shape:
                count *= n
            expected = stream.tell() + count * dtype.itemsize
            size = os.fstat(stream.fileno()).st_size
            if size != expected:
                raise ValueError(
                    f"the header promises {expected} bytes of data, the file has {size}"
                )
            stream.seek(0)
            return np.load(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, MemoryError) as exc:
        raise InvalidInput(f"cannot read {path} as a .npy array ({exc})") from None
