"""Reading a bundle from a stranger: closed-world, whitelisted, capped, verified.

Nothing here writes anything (the importer may hand in a ``sink`` for payload bytes), never
extracts by the ZIP's own names, never inflates past the declared sizes, and never hands an
untrusted ``.npy`` to numpy: its header is parsed and checked here first.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import QexError
from ..names import check_name
from ..npyfile import MAX_HEADER_BYTES, NpyFormatError, check_density_matrix_header, read_header
from .format import (
    BAD_BAG_INFO,
    BAD_BAGIT,
    BAD_JSON,
    BAD_MANIFEST,
    BAD_NAME,
    BAD_NPY,
    BAG_INFO,
    BAGIT,
    BAGIT_TXT,
    CHECKSUM,
    CHUNK,
    DESCRIPTION,
    DUPLICATE_NAME,
    EXTRA,
    FORMAT_VERSION,
    INCONSISTENT,
    MANIFEST,
    MISSING,
    NOT_A_ZIP,
    NOT_REGULAR,
    OVERLAP,
    OXUM,
    PAYLOAD_NAME,
    RATIO,
    RO_CRATE,
    SCHEMA,
    SIZE_MISMATCH,
    TAG_FILES,
    TAGMANIFEST,
    TAGMANIFEST_MISMATCH,
    TOO_LARGE,
    TOO_MANY_MEMBERS,
    TRAILING_DATA,
    UNSUPPORTED_ZIP,
    VERSION,
    BundleError,
    Limits,
    fold,
    parse_json,
    schema_problem,
)

MAX_TAG_FILE = 64 * 1024**2
RATIO_FLOOR = 1 << 20  # small members compress well legitimately; bombs are large
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64})[ \t]+(\S+)$")
Sink = Callable[[str], "BinaryIO | None"]
# What zipfile and zlib raise on malformed input (an unknown "version needed", a bad
# compression header, ...): all of it means a broken bundle, never a crash.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
    UnicodeError,
)


@dataclass
class BundleContents:
    """What a validated bundle holds."""

    path: Path
    sha256: str
    size: int
    description: dict[str, Any]
    bag_info: dict[str, str]
    manifest: dict[str, str]
    member_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def bundle_id(self) -> str:
        return str(self.description["bundle_id"])

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self.description["runs"])


def read_bundle(
    path: str | os.PathLike[str],
    limits: Limits | None = None,
    *,
    sink: Sink | None = None,
    progress: Callable[[int], None] | None = None,
    verify_payload: bool = True,
    all_problems: bool = False,
) -> BundleContents:
    """Validate the bundle at ``path`` completely; raise :class:`BundleError` at the first problem.

    ``sink(member)`` may return a binary stream that receives that payload member's bytes as
    they are verified (the importer's staging files); it is closed after that member.
    ``verify_payload=False`` checks the structure, tag files and descriptions but does not
    read the data files (``inspect``). With ``all_problems=True`` every data file is checked
    even after one failed, and the error raised lists them all in ``problems``.
    """
    limits = limits or Limits()
    source = Path(path)
    if not source.is_file():
        raise BundleError(NOT_A_ZIP, f"{source} is not a file")
    size = source.stat().st_size
    if size > limits.max_total_size:
        raise BundleError(
            TOO_LARGE, f"the bundle is {size} bytes; raise --max-total-size to accept it"
        )
    with ExitStack() as stack:
        stream = stack.enter_context(source.open("rb"))
        # The bundle's own checksum (kept with imported runs) is computed on the other core
        # while the members are checked.
        bundle_hash = _BackgroundHash(source) if verify_payload else None
        if bundle_hash:
            stack.callback(bundle_hash.stop)
        _check_end_record(stream, size)
        try:
            archive = stack.enter_context(zipfile.ZipFile(stream))
        except ZIP_ERRORS as exc:
            raise BundleError(NOT_A_ZIP, f"not a readable ZIP file ({exc})") from None
        infos, data_starts = _check_members(archive, stream, limits)
        tags = {
            name: _read_small(archive, infos[name], MAX_TAG_FILE)
            for name in TAG_FILES
            if name in infos
        }
        for name in TAG_FILES:
            if name not in tags:
                raise BundleError(MISSING, "required BagIt tag file is missing", name)
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
        payload_names = set(infos) - set(TAG_FILES)
        for name in sorted(set(manifest) - payload_names):
            raise BundleError(MISSING, "listed in manifest-sha256.txt but not in the bundle", name)
        for name in sorted(payload_names - set(manifest)):
            raise BundleError(EXTRA, "in the bundle but not in manifest-sha256.txt", name)
        bag_info = _parse_bag_info(tags[BAG_INFO])
        oxum = f"{sum(infos[name].file_size for name in manifest)}.{len(manifest)}"
        if bag_info.get("Payload-Oxum") != oxum:
            raise BundleError(
                OXUM,
                f"Payload-Oxum is {bag_info.get('Payload-Oxum')!r}, the payload is {oxum}",
                BAG_INFO,
            )
        for required in (DESCRIPTION, RO_CRATE):
            if required not in manifest:
                raise BundleError(MISSING, "required bundle member is missing", required)

        description = _read_json(archive, infos[DESCRIPTION], manifest, limits)
        _check_description(description, bag_info, manifest, infos)
        ro_crate = _read_json(archive, infos[RO_CRATE], manifest, limits)
        if not isinstance(ro_crate, dict) or not isinstance(ro_crate.get("@graph"), list):
            raise BundleError(
                BAD_JSON, "RO-Crate metadata must be an object with an @graph list", RO_CRATE
            )

        shapes = {
            run["density_matrix"]["path"]: tuple(run["density_matrix"]["shape"])
            for run in description["runs"]
        }
        files = sorted(
            payload_names - {DESCRIPTION, RO_CRATE}, key=lambda name: infos[name].header_offset
        )
        raw = stack.enter_context(source.open("rb"))
        found: list[BundleError] = []
        for name in files if verify_payload else ():
            target = sink(name) if sink else None
            try:
                member = _open_member(archive, raw, infos[name], data_starts[name])
                _verify_member(
                    member, infos[name], manifest[name], shapes.get(name), target, progress
                )
            except BundleError as exc:
                if not all_problems:
                    raise
                found.append(exc)
            finally:
                if target is not None:
                    target.close()
        if found:
            found[0].problems = found
            raise found[0]
        bundle_sha256 = bundle_hash.result() if bundle_hash else ""
    return BundleContents(
        path=source,
        sha256=bundle_sha256,
        size=size,
        description=description,
        bag_info=bag_info,
        manifest=manifest,
        member_sizes={name: info.file_size for name, info in infos.items()},
    )


def _check_end_record(stream: BinaryIO, size: int) -> None:
    """The ZIP must end with its end-of-central-directory record: no comment, no junk after."""
    if size < 22:
        raise BundleError(NOT_A_ZIP, "too short to be a ZIP file")
    stream.seek(size - 22)
    tail = stream.read(22)
    if tail[:4] != b"PK\x05\x06":
        stream.seek(max(0, size - 65_557))
        if b"PK\x05\x06" in stream.read():
            raise BundleError(
                TRAILING_DATA,
                "data after the ZIP's end record (or a ZIP comment); the file was altered",
            )
        raise BundleError(NOT_A_ZIP, "no ZIP end record: not a ZIP file, or truncated")
    (comment_length,) = struct.unpack("<H", tail[20:22])
    if comment_length:
        raise BundleError(TRAILING_DATA, "ZIP comment present; bundles have none")
    stream.seek(0)


def _check_members(
    archive: zipfile.ZipFile, stream: BinaryIO, limits: Limits
) -> tuple[dict[str, zipfile.ZipInfo], dict[str, int]]:
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise BundleError(
            TOO_MANY_MEMBERS, f"{len(infos)} members; raise --max-members to accept more"
        )
    by_name: dict[str, zipfile.ZipInfo] = {}
    folded: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.filename
        if name in by_name:
            raise BundleError(DUPLICATE_NAME, "appears twice in the ZIP", name[:200])
        if name not in TAG_FILES and not PAYLOAD_NAME.match(name):
            raise BundleError(BAD_NAME, "name is not one a bundle may contain", repr(name)[:200])
        key = fold(name)
        if key in folded:
            raise BundleError(
                DUPLICATE_NAME,
                f"collides with {folded[key]!r} on case-insensitive file systems",
                name,
            )
        folded[key] = name
        mode = info.external_attr >> 16
        if info.is_dir() or (mode and (mode & 0o170000) != 0o100000):
            raise BundleError(
                NOT_REGULAR, "is not a regular file (directory, symlink or device)", name
            )
        if info.flag_bits & 0x1:
            raise BundleError(UNSUPPORTED_ZIP, "is encrypted", name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise BundleError(
                UNSUPPORTED_ZIP,
                f"uses compression method {info.compress_type}; only stored and deflate",
                name,
            )
        if info.file_size > limits.max_file_size:
            raise BundleError(
                TOO_LARGE, f"{info.file_size} bytes; raise --max-file-size to accept it", name
            )
        total += info.file_size
        if total > limits.max_total_size:
            raise BundleError(
                TOO_LARGE, "the members add up to more than allowed; raise --max-total-size"
            )
        if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise BundleError(
                RATIO,
                f"inflates {info.file_size / max(info.compress_size, 1):.0f}x; "
                "raise --max-ratio to accept it",
                name,
            )
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise BundleError(SIZE_MISMATCH, "stored member whose sizes disagree", name)
        by_name[name] = info
    return by_name, _check_layout(archive, stream, infos)


def _check_layout(
    archive: zipfile.ZipFile, stream: BinaryIO, infos: list[zipfile.ZipInfo]
) -> dict[str, int]:
    """Each member's bytes lie in their own range before the central directory: no overlaps.
    Returns where each member's data starts."""
    end = archive.start_dir
    spans = []
    data_starts = {}
    for info in infos:
        stream.seek(info.header_offset)
        header = stream.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise BundleError(
                OVERLAP, "local header missing where the central directory points", info.filename
            )
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        if stream.read(name_length) != info.orig_filename.encode(
            "utf-8" if info.flag_bits & 0x800 else "cp437"
        ):
            raise BundleError(OVERLAP, "local header names another file", info.filename)
        start = info.header_offset
        data_starts[info.filename] = info.header_offset + 30 + name_length + extra_length
        stop = data_starts[info.filename] + info.compress_size
        spans.append((start, stop, info.filename))
    spans.sort()
    if spans and spans[0][0] != 0:
        raise BundleError(OVERLAP, "data before the first ZIP member")
    for (_, stop, name), (next_start, _, _) in zip(spans, [*spans[1:], (end, 0, "")], strict=True):
        if stop > next_start:
            raise BundleError(
                OVERLAP, "member data overlaps another member or the central directory", name
            )
    stream.seek(0)
    return data_starts


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    if info.file_size > cap:
        raise BundleError(
            TOO_LARGE, f"{info.file_size} bytes is too large for this member", info.filename
        )
    try:
        with archive.open(info) as member:
            data = member.read(cap + 1)
    except ZIP_ERRORS as exc:
        raise BundleError(CHECKSUM, f"corrupt ZIP data ({exc})", info.filename) from None
    if len(data) != info.file_size:
        raise BundleError(SIZE_MISMATCH, "inflates to another size than declared", info.filename)
    return data


def _parse_manifest(raw: bytes, member: str, *, prefix: str) -> dict[str, str]:
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


def _parse_bag_info(raw: bytes) -> dict[str, str]:
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
    if info.get("QEX-Bundle-Version") != str(FORMAT_VERSION):
        raise BundleError(
            VERSION,
            f"QEX-Bundle-Version is {info.get('QEX-Bundle-Version')!r}; this qex-archive reads "
            f"version {FORMAT_VERSION} (upgrade with 'pip install --upgrade qex-archive')",
            BAG_INFO,
        )
    return info


def _read_json(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, manifest: dict[str, str], limits: Limits
) -> Any:
    raw = _read_small(archive, info, limits.max_json_size)
    if hashlib.sha256(raw).hexdigest() != manifest[info.filename]:
        raise BundleError(CHECKSUM, "checksum differs from manifest-sha256.txt", info.filename)
    return parse_json(raw, info.filename, limits)


def _check_description(
    description: Any,
    bag_info: dict[str, str],
    manifest: dict[str, str],
    infos: dict[str, zipfile.ZipInfo],
) -> None:
    if isinstance(description, dict) and description.get("format_version") not in (
        None,
        FORMAT_VERSION,
    ):
        raise BundleError(
            VERSION,
            f"format version {description.get('format_version')!r} is not {FORMAT_VERSION}",
            DESCRIPTION,
        )
    problem = schema_problem(description)
    if problem:
        raise BundleError(SCHEMA, problem, DESCRIPTION)
    if bag_info.get("External-Identifier") != f"urn:uuid:{description['bundle_id']}":
        raise BundleError(INCONSISTENT, "External-Identifier differs from the bundle_id", BAG_INFO)
    referenced: set[str] = set()
    seen_runs: set[str] = set()
    for run in description["runs"]:
        run_id = run["run_id"]
        for key, what in (("experiment_name", "experiment name"), ("backend_name", "backend")):
            try:
                check_name(run[key], what)
            except QexError as exc:
                raise BundleError(INCONSISTENT, f"run {run_id}: {exc}", DESCRIPTION) from None
        if run_id in seen_runs:
            raise BundleError(INCONSISTENT, f"run {run_id} is described twice", DESCRIPTION)
        seen_runs.add(run_id)
        rho = run["density_matrix"]
        if rho["path"] != f"data/results/{run_id}_rho.npy":
            raise BundleError(INCONSISTENT, f"run {run_id} points at {rho['path']}", DESCRIPTION)
        if rho["shape"][0] != rho["shape"][1]:
            raise BundleError(INCONSISTENT, f"run {run_id} has a non-square shape", DESCRIPTION)
        files = [rho]
        names: set[str] = set()
        for artifact in run["artifacts"]:
            extension = artifact["path"].rsplit(".", 1)[-1]
            if (
                artifact["path"] != f"data/artifacts/{run_id}_{artifact['name']}.{extension}"
                or artifact["name"] in names
            ):
                raise BundleError(
                    INCONSISTENT,
                    f"artifact {artifact['path']} does not belong to run {run_id}",
                    DESCRIPTION,
                )
            names.add(artifact["name"])
            files.append(artifact)
        for record in files:
            path = record["path"]
            if path not in manifest:
                raise BundleError(
                    MISSING, f"described for run {run_id} but not in the manifest", path
                )
            if path in referenced:
                raise BundleError(INCONSISTENT, "described twice", path)
            referenced.add(path)
            if record["sha256"] != manifest[path] or record["size"] != infos[path].file_size:
                raise BundleError(
                    INCONSISTENT,
                    "size or checksum differs between qex-bundle.json and the bag",
                    path,
                )
    for name in sorted(set(manifest) - referenced - {DESCRIPTION, RO_CRATE}):
        if name.startswith("data/artifacts/"):
            raise BundleError(INCONSISTENT, "artifact of a run the bundle does not describe", name)
        raise BundleError(INCONSISTENT, "file not described in qex-bundle.json", name)


class _StoredMember:
    """The bytes of a stored member, read straight from the file within its checked range
    (zipfile would add a CRC-32 pass; the SHA-256 check makes it redundant)."""

    def __init__(self, raw: BinaryIO, start: int, size: int) -> None:
        self._raw, self._position, self._left = raw, start, size

    def read(self, n: int) -> bytes:
        if self._left <= 0:
            return b""
        self._raw.seek(self._position)
        data = self._raw.read(min(n, self._left))
        self._position += len(data)
        self._left = self._left - len(data) if data else 0
        return data

    def __enter__(self) -> _StoredMember:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _open_member(
    archive: zipfile.ZipFile, raw: BinaryIO, info: zipfile.ZipInfo, data_start: int
) -> Any:
    if info.compress_type == zipfile.ZIP_STORED:
        return _StoredMember(raw, data_start, info.compress_size)
    return archive.open(info)


class _BackgroundHash:
    """SHA-256 of a whole file, computed in a thread (hashlib releases the GIL)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digest = hashlib.sha256()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._path.open("rb") as stream:
                while not self._stop.is_set() and (chunk := stream.read(CHUNK)):
                    self._digest.update(chunk)
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


def _verify_member(
    member_stream: Any,
    info: zipfile.ZipInfo,
    expected_sha256: str,
    npy_shape: tuple[int, ...] | None,
    target: BinaryIO | None,
    progress: Callable[[int], None] | None,
) -> None:
    name = info.filename
    digest = hashlib.sha256()
    received = 0
    try:
        with member_stream as member:
            if npy_shape is not None:
                prefix = member.read(MAX_HEADER_BYTES + 16)
                _check_npy_prefix(prefix, npy_shape, info.file_size, name)
                chunk = prefix
            else:
                chunk = member.read(CHUNK)
            while chunk:
                received += len(chunk)
                if received > info.file_size:
                    raise BundleError(
                        SIZE_MISMATCH, "inflates to more than its declared size", name
                    )
                digest.update(chunk)
                if target is not None:
                    target.write(chunk)
                if progress:
                    progress(len(chunk))
                chunk = member.read(CHUNK)
    except ZIP_ERRORS as exc:
        raise BundleError(CHECKSUM, f"corrupt ZIP data ({exc})", name) from None
    if received != info.file_size:
        raise BundleError(SIZE_MISMATCH, f"holds {received} bytes, declared {info.file_size}", name)
    if digest.hexdigest() != expected_sha256:
        raise BundleError(CHECKSUM, "checksum mismatch: differs from manifest-sha256.txt", name)


def _check_npy_prefix(prefix: bytes, shape: tuple[int, ...], size: int, name: str) -> None:
    try:
        header = read_header(io.BytesIO(prefix))
        check_density_matrix_header(header)
    except NpyFormatError as exc:
        raise BundleError(BAD_NPY, str(exc), name) from None
    if header.shape != shape:
        raise BundleError(
            BAD_NPY, f".npy shape {header.shape} differs from the described {shape}", name
        )
    if header.data_offset + header.data_size != size:
        raise BundleError(
            BAD_NPY, ".npy data size does not match its header (truncated or padded)", name
        )
