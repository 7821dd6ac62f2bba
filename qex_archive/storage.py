"""Files on disk: crash-safe writes and checksums.

A file is written under a temporary name in its final directory, fsynced, renamed over its
final name and the directory fsynced, all before the database row that points at it is
committed. A process killed at any moment therefore leaves at most an orphan file (the
temporary or the renamed one), never a row whose file is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".tmp-"
CHUNK_SIZE = 1 << 20


def temp_name_for(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{path.name}")


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A stream whose bytes appear at ``path`` all at once, durably, when the block ends;
    if the block raises, ``path`` is left as it was and the temporary file removed."""
    temp = temp_name_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb", closefd=True) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_path(path.parent)


def atomic_write(path: Path, chunks: Iterable[bytes | memoryview]) -> None:
    """Write ``chunks`` to ``path`` so that ``path`` is either absent or complete."""
    with atomic_output(path) as stream:
        for chunk in chunks:
            stream.write(chunk)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory so that renames in it are durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def sha256_of_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
