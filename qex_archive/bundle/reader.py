"""Reading a bundle from a stranger: closed-world, whitelisted, capped, verified.

The format has three layers, each checked by its own module and handing the next a view it
can trust: the ZIP container (:mod:`.container`: every byte accounted for, headers agree,
caps applied before anything is inflated), the BagIt bag (:mod:`.bag`: tag files, manifests,
Oxum) and qex's description and payload (:mod:`.description`: strict JSON, schema, the rows an
import would insert; here: every data file hashed, and each ``.npy`` header checked against
its description before a byte of it is passed on).

Nothing here writes anything (the importer may hand in a ``sink`` for payload bytes), never
extracts by the ZIP's own names and never hands an untrusted ``.npy`` to numpy.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import QexError
from ..errors import SinkError as SinkError
from ..store.files import failure_reason
from ..store.npyfile import (
    MAX_HEADER_BYTES,
    NpyFormatError,
    check_data_size,
    check_density_matrix_header,
    read_header,
)
from .bag import Bag, Manifest, read_bag
from .container import Container, Members, open_container
from .description import Description, Summary, description_runs, read_descriptions
from .format import (
    BAD_NPY,
    CHECKSUM,
    CHUNK,
    DESCRIPTION,
    NOT_A_ZIP,
    RO_CRATE,
    TOO_LARGE,
    BundleError,
    Limits,
)

Sink = Callable[[str], "BinaryIO | None"]


@dataclass
class BundleContents:
    """What a validated bundle holds. The runs are not kept (a bundle may describe a million):
    :meth:`iter_runs` reads them again from the bundle file, one at a time."""

    path: Path
    sha256: str
    size: int
    description: dict[str, Any]  # qex-bundle.json without its runs
    summary: Summary  # what the runs add up to
    bag_info: dict[str, str]
    manifest: Manifest
    members: Members
    limits: Limits = field(default_factory=Limits)
    storage_options: dict[str, Any] | None = None  # for reading the runs of a URL again

    @property
    def bundle_id(self) -> str:
        return str(self.description["bundle_id"])

    @property
    def member_sizes(self) -> dict[str, int]:
        return {name: member.file_size for name, member in self.members.items()}

    @property
    def payload_bytes(self) -> int:
        return sum(self.members[name].file_size for name in self.manifest)

    @property
    def description_bytes(self) -> int:
        """The bytes of the bundle file :meth:`iter_runs` reads (``qex-bundle.json``)."""
        return self.members[DESCRIPTION].compress_size

    def iter_runs(self, progress: Callable[[int], None] | None = None) -> Iterator[dict[str, Any]]:
        """The run records, read again one by one from the file that was verified
        (``progress`` told of the bytes of the bundle file as they are read); a
        :class:`BundleError` (at the end) if the file changed since."""
        from ..remote.transfer import is_url, ranged

        if is_url(self.path):  # the description's bytes only, by range requests
            source = ranged(self.path, self.storage_options, max_size=self.limits.max_total_size)
        else:
            source = _opened(Path(self.path))
        with source as (pread, size):
            container = Container(pread, size, self.members)
            yield from description_runs(container, self.manifest, self.limits, progress)

    @property
    def runs(self) -> list[dict[str, Any]]:
        """Every run record, in memory at once: :meth:`iter_runs` for large bundles."""
        return list(self.iter_runs())


def read_bundle(
    path: str | os.PathLike[str],
    limits: Limits | None = None,
    *,
    sink: Sink | None = None,
    progress: Callable[[int], None] | None = None,
    verify_payload: bool = True,
    all_problems: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> BundleContents:
    """Validate the bundle at ``path`` completely; raise :class:`BundleError` at the first problem.

    ``sink(member)`` may return a binary stream that receives that payload member's bytes as
    they are verified (the importer's staging files); it is closed after that member, and a
    failure to write it raises :class:`SinkError`. ``verify_payload=False`` checks the
    structure, tag files and descriptions but does not read the data files (``inspect``). With
    ``all_problems=True`` every data file is checked even after one failed, and the error
    raised lists them all in ``problems``. ``path`` may be a URL (``s3://...``, ``https://...``;
    see :mod:`qex_archive.remote.transfer`), with fsspec's ``storage_options``.
    """
    from ..remote.transfer import fetched, is_url, local_path, ranged

    if is_url(path) and not verify_payload and sink is None:
        # the structure and descriptions only (inspect): range reads, no payload transferred
        limits = limits or Limits()
        with ranged(path, storage_options, max_size=limits.max_total_size) as (pread, size):
            _check_size(size, limits)
            container, bag, description = _read_structure(pread, size, limits)
        contents = _contents(os.fspath(path), "", size, container, bag, description, limits)
        contents.storage_options = storage_options
        return contents
    if is_url(path):
        # refused before the download when the store tells the size, else while it runs
        maximum = (limits or Limits()).max_total_size
        with fetched(path, storage_options, max_size=maximum) as local:
            contents = read_bundle(
                local,
                limits,
                sink=sink,
                progress=progress,
                verify_payload=verify_payload,
                all_problems=all_problems,
            )
        contents.path = os.fspath(path)  # type: ignore[assignment]
        contents.storage_options = storage_options
        return contents
    limits = limits or Limits()
    source = local_path(path)
    with ExitStack() as stack:
        pread, size = stack.enter_context(_opened(source))
        _check_size(size, limits)
        # The bundle's own checksum (kept with imported runs) is computed on the other core
        # while the members are checked.
        bundle_hash = _BackgroundHash(pread, size) if verify_payload else None
        if bundle_hash:
            stack.callback(bundle_hash.stop)
        container, bag, description = _read_structure(pread, size, limits)
        if verify_payload:
            counted = _Counted(progress)
            _verify_payload(container, bag.manifest, description, sink, counted, all_problems)
            if progress:  # the rest: headers, central directory, tag files, descriptions
                progress(size - counted.done)
        bundle_sha256 = bundle_hash.result() if bundle_hash else ""
    return _contents(source, bundle_sha256, size, container, bag, description, limits)


@contextmanager
def _opened(source: Path) -> Iterator[tuple[Callable[[int, int], bytes], int]]:
    """``os.pread`` of the bundle file and its size, for as long as the block runs."""
    try:
        if not source.is_file():
            raise BundleError(NOT_A_ZIP, f"{source} is not a file")
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:  # the reader's file system, not the bundle, is at fault
        raise QexError(f"cannot read {source}: {failure_reason(exc)}") from None
    try:
        yield functools.partial(os.pread, fd), os.fstat(fd).st_size
    finally:
        os.close(fd)


def _check_size(size: int, limits: Limits) -> None:
    if size > limits.max_total_size:
        raise BundleError(
            TOO_LARGE, f"the bundle is {size} bytes; raise --max-total-size to accept it"
        )


def _read_structure(
    pread: Callable[[int, int], bytes], size: int, limits: Limits
) -> tuple[Container, Bag, Description]:
    """The container, the bag and the descriptions: everything but the payload."""
    container = open_container(pread, size, limits)
    bag = read_bag(container)
    return container, bag, read_descriptions(container, bag.manifest, bag.info, limits)


def _contents(
    path: Any,
    sha256: str,
    size: int,
    container: Container,
    bag: Bag,
    description: Description,
    limits: Limits,
) -> BundleContents:
    return BundleContents(
        path=path,
        sha256=sha256,
        size=size,
        description=description.head,
        summary=description.summary,
        bag_info=bag.info,
        manifest=bag.manifest,
        members=container.members,
        limits=limits,
    )


def _verify_payload(
    container: Container,
    manifest: Manifest,
    description: Description,
    sink: Sink | None,
    progress: Callable[[int], None] | None,
    all_problems: bool,
) -> None:
    members = container.members
    found: list[BundleError] = []
    for row in range(len(members)):  # in file order
        if not manifest.listed(row) or members.name(row) in (DESCRIPTION, RO_CRATE):
            continue
        member = members.at(row)
        try:
            target = sink(member.name) if sink else None
        except OSError as exc:
            raise SinkError(exc) from None
        try:
            digest = hashlib.sha256()
            shape = description.shapes[row]
            head = b""
            for chunk in container.read(member, progress):
                if shape is not None:  # checked before any of its bytes is passed on
                    head += chunk[: MAX_HEADER_BYTES + 16 - len(head)]
                    if len(head) == min(member.file_size, MAX_HEADER_BYTES + 16):
                        _check_npy_prefix(head, shape, member.file_size, member.name)
                        shape = None
                digest.update(chunk)
                if target is not None:
                    try:
                        target.write(chunk)
                    except OSError as exc:
                        raise SinkError(exc) from None
            if shape is not None:
                _check_npy_prefix(head, shape, member.file_size, member.name)
            if digest.hexdigest() != manifest.digest(row):
                raise BundleError(
                    CHECKSUM, "checksum mismatch: differs from manifest-sha256.txt", member.name
                )
        except BundleError as exc:
            if not all_problems:
                raise
            found.append(exc)
        finally:
            if target is not None:
                try:
                    target.close()
                except OSError as exc:
                    raise SinkError(exc) from None
    if found:
        found[0].problems = found
        raise found[0]


class _Counted:
    """A progress callback that also counts what it was told."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.progress, self.done = progress, 0

    def __call__(self, n: int) -> None:
        self.done += n
        if self.progress:
            self.progress(n)


def _check_npy_prefix(prefix: bytes, shape: tuple[int, ...], size: int, name: str) -> None:
    try:
        header = read_header(io.BytesIO(prefix))
        check_density_matrix_header(header)
        check_data_size(header, size)
    except NpyFormatError as exc:
        raise BundleError(BAD_NPY, str(exc), name) from None
    if header.shape != shape:
        raise BundleError(
            BAD_NPY, f".npy shape {header.shape} differs from the described {shape}", name
        )


class _BackgroundHash:
    """SHA-256 of a whole file, computed in a thread (hashlib releases the GIL)."""

    def __init__(self, pread: Callable[[int, int], bytes], size: int) -> None:
        self._pread, self._size = pread, size
        self._digest = hashlib.sha256()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            position = 0
            while not self._stop.is_set() and position < self._size:
                chunk = self._pread(min(CHUNK, self._size - position), position)
                if not chunk:
                    break
                self._digest.update(chunk)
                position += len(chunk)
        except BaseException as exc:  # re-raised by result()
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise BundleError(NOT_A_ZIP, f"cannot read the bundle ({self._error})")
        return self._digest.hexdigest()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
