"""``check`` and ``gc``: is every row backed by an intact file of the archive's own, and is
every file wanted.

Both follow the rule of :mod:`qex_archive.store.paths`: they list ``results/`` and
``artifacts/`` without following links and never descend through a linked directory, and
``gc`` removes only regular files that no row refers to.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._jsonvalues import stored_json
from .._timeutil import timestamp_problem
from ..codes import (
    DATABASE_DAMAGED,
    FILE_CONTENT_CHANGED,
    FILE_MISSING,
    FILE_SIZE_CHANGED,
    INVALID_TIMESTAMP,
    LINKED_DIR,
    METADATA_NOT_OBJECT,
    NO_CHECKSUM,
    NON_PHYSICAL_STATE,
    NOT_REGULAR_FILE,
    NPY_DAMAGED,
    ORPHAN_FILE,
    PARAMS_NOT_OBJECT,
    SHARED_FILE,
    STAGING_LEFT,
    STATE_MISMATCH,
    TEMPORARY_FILE_LEFT,
)
from . import tables
from .connection import connect, read_transaction
from .files import TEMP_PREFIX, is_temp_name, sha256_of_stream, temp_name_owner
from .npyfile import NpyFormatError, check_data_size, check_density_matrix_header
from .npyfile import read_header as read_npy_header
from .paths import (
    DataPaths,
    ForeignFile,
    Listing,
    data_path,
    list_data_files,
    open_checked_path,
    remove_data_file,
)

if TYPE_CHECKING:
    from ..archive import Archive

STAGING_DIR = ".staging"


@dataclass(frozen=True)
class Finding:
    """One problem found by :func:`check_archive`.

    ``severity`` is ``error`` (data missing or damaged, or files nobody refers to) or
    ``warning`` (stored as intended but worth knowing, e.g. a non-physical state).
    """

    code: str
    severity: str
    path: str | None
    run_id: str | None
    message: str

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.path or self.run_id or "archive"
        return f"{self.code} {self.severity}: {where}: {self.message}"


@contextmanager
def _snapshot(archive: Archive) -> Iterator[tuple[sqlite3.Connection, Listing]]:
    """The files listed and a connection reading the database as it was meanwhile, one
    consistent picture: writers name files only while they hold the write lock, so while it
    is held here no file is named and no row committed. The lock is held only for the listing;
    the database is read afterwards from a read transaction begun under it, while writers go
    on (in WAL mode a reader keeps its snapshot). A read-only archive has no writers. Inside
    a write unit of this archive (a batch) the lock is held already, and the archive's own
    connection sees that unit's rows as well as everyone's."""
    if archive.read_only or archive.writer.active:
        with read_transaction(archive.conn):
            listing = list_data_files(archive.root)
            # files of the unit's deleted runs: named for others until it commits, then gone
            listing.files.difference_update(archive.writer.pending_removals())
            yield archive.conn, listing
        return
    reader = connect(archive.db_path)
    try:
        with read_transaction(reader):
            with archive.writer.unit("list the archive's files"):
                reader.execute("SELECT count(*) FROM sqlite_master").fetchone()  # begins it
                listing = list_data_files(archive.root)
            yield reader, listing
    finally:
        reader.close()


def check_archive(archive: Archive, *, verify_checksums: bool = True) -> list[Finding]:
    """Compare the database with the files on disk; return every problem found.

    The write lock is held only while the files are listed (see :func:`_snapshot`). The files
    are then checked against the rows as they were, and the runs' own rows (params and
    metadata, most of the database) read a batch at a time, so that memory holds a few hundred
    bytes per file."""
    findings: list[Finding] = []
    with _snapshot(archive) as (conn, listing):
        quick = conn.execute("PRAGMA quick_check").fetchone()[0]
        if quick != "ok":
            findings.append(Finding(DATABASE_DAMAGED, "error", "qex.db", None, f"SQLite: {quick}"))
        references = tables.references(conn)
        checksums = tables.file_checksums(conn)
        matrices = tables.density_matrix_paths(conn)
    shapes: dict[str, tuple[int, ...]] = {}  # of the density matrices whose header is sound
    findings += _check_files(
        archive, references, listing, checksums, matrices, shapes, verify_checksums
    )
    del references, listing
    with read_transaction(archive.conn):
        for rows in tables.run_rows_for_check(archive.conn):
            for run_id, params, metadata, timestamp, rho_path in rows:
                if rho_path not in matrices:
                    continue  # recorded since the snapshot: the next check sees it whole
                problem = timestamp_problem(timestamp)
                if problem:
                    message = f"timestamp {problem}"
                    findings.append(Finding(INVALID_TIMESTAMP, "error", None, run_id, message))
                findings.extend(
                    _check_row(
                        run_id, params, metadata, shapes.get(rho_path), checksums.get(rho_path)
                    )
                )
    return findings


def _check_files(
    archive: Archive,
    references: list[tuple[str, str]],
    listing: Listing,
    checksums: dict[str, tuple[int, str]],
    matrices: set[str],
    shapes: dict[str, tuple[int, ...]],
    verify_checksums: bool,
) -> list[Finding]:
    """Files nobody refers to, and each referenced file against its rows; ``shapes`` receives
    the shape of each density matrix whose header is sound."""
    findings: list[Finding] = []
    owners: dict[str, list[str]] = defaultdict(list)
    for relative, run_id in references:
        owners[relative].append(run_id)
    for relative in sorted(listing.files - set(owners)):
        if _being_written(relative):
            continue  # a record of a live process, its rows still to come
        if is_temp_name(Path(relative).name):
            message = "unfinished write left by an interrupted process; 'qex-archive gc' removes it"
            findings.append(Finding(TEMPORARY_FILE_LEFT, "error", relative, None, message))
        else:
            message = "file not referenced by any run; 'qex-archive gc' removes it"
            findings.append(Finding(ORPHAN_FILE, "error", relative, None, message))
    for relative, why in listing.strange:
        if relative not in owners:
            code = LINKED_DIR if relative.endswith("/") else NOT_REGULAR_FILE
            findings.append(Finding(code, "error", relative, None, f"{why}; remove or replace it"))
    for directory in _stale_staging(archive):
        message = "left by an interrupted import; 'qex-archive gc' removes it"
        findings.append(
            Finding(STAGING_LEFT, "error", f"{STAGING_DIR}/{directory.name}/", None, message)
        )
    paths = DataPaths(archive.root)
    for relative, run_ids in sorted(owners.items()):
        if len(set(run_ids)) > 1:
            shared = ", ".join(sorted(set(run_ids)))
            message = f"one file referenced by several runs ({shared}); correct the rows"
            findings.append(Finding(SHARED_FILE, "error", relative, None, message))
        findings.extend(
            _check_file(
                paths,
                relative,
                run_ids[0],
                checksums,
                verify_checksums,
                shapes if relative in matrices else None,
            )
        )
    return findings


def collect_garbage(archive: Archive, *, dry_run: bool = False) -> list[str]:
    """Remove files under ``results/`` and ``artifacts/`` that no row refers to, and what
    interrupted imports left in ``.staging/``. Links and linked directories are left alone.
    A page whose render was interrupted between replacing it and committing its row (its new
    bytes under the old checksum) gets its old file back: the second name the render kept
    of it, a temporary file whose bytes match the recorded checksum.

    The candidates are found from a snapshot (see :func:`_snapshot`: the write lock is held
    only while the files are listed) and confirmed under the write lock, with an index
    look-up each, just before they are removed."""
    archive.writer.refuse_read_only("remove files")
    with _snapshot(archive) as (conn, listing):
        referenced = {path for path, _ in tables.references(conn)}
    candidates = sorted(listing.files - referenced)
    del referenced, listing
    with archive.writer.unit("remove unreferenced files"):
        # A run committed since the snapshot may name a candidate (an import over an orphan of
        # the same name); files are named only under this lock, so what no row names now stays
        # unnamed while it is held.
        named = tables.referenced_among(archive.conn, candidates)
        unwanted = [
            relative
            for relative in candidates
            if relative not in named and not _being_written(relative)
        ]
        stale = _stale_staging(archive)
        restored = _interrupted_replacements(archive, unwanted)
        unwanted = [relative for relative in unwanted if relative not in restored]
        if not dry_run:
            for temporary, relative in restored.items():
                os.replace(
                    data_path(archive.root, temporary, temporary=True),
                    data_path(archive.root, relative),
                )
            for relative in unwanted:
                remove_data_file(archive.root, relative, temporary=True)
            for directory in stale:
                shutil.rmtree(directory, ignore_errors=True)
    return unwanted + [f"{STAGING_DIR}/{d.name}/" for d in stale]


def _interrupted_replacements(archive: Archive, candidates: list[str]) -> dict[str, str]:
    """Temporary files of dead processes that hold the recorded bytes of a stored file whose
    own bytes differ from them: the old file of a replacement whose commit never came
    (see :class:`~qex_archive.store.files.PendingFiles`). Temporary path -> stored path."""
    found: dict[str, str] = {}
    for temporary in candidates:
        directory, _, name = temporary.rpartition("/")
        if not is_temp_name(name) or temp_name_owner(name) is None:
            continue
        relative = f"{directory}/{name.removeprefix(TEMP_PREFIX).split('-', 2)[-1]}"
        recorded = tables.file_checksum(archive.conn, relative)
        if recorded is None or _digest(archive, relative) == recorded:
            continue
        if _digest(archive, temporary, temporary=True) == recorded:
            found[temporary] = relative
    return found


def _digest(archive: Archive, relative: str, *, temporary: bool = False) -> tuple[int, str] | None:
    try:
        with open_checked_path(
            data_path(archive.root, relative, temporary=temporary), relative
        ) as stream:
            return sha256_of_stream(stream)
    except (OSError, ForeignFile):
        return None


def _stale_staging(archive: Archive) -> list[Path]:
    """Staging directories of imports whose process is gone (named ``import-{pid}-...``)."""
    root = archive.root / STAGING_DIR
    if not _real_directory(root):
        return []
    stale = []
    for directory in sorted(root.iterdir()):
        if not _real_directory(directory):
            continue
        parts = directory.name.split("-")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if pid is None or not _process_alive(pid):
            stale.append(directory)
    return stale


def _being_written(relative: str) -> bool:
    """Whether a file is a live process's unfinished write (a temporary name of a process
    that still runs): a run it records names it once it holds the write lock."""
    pid = temp_name_owner(relative.rsplit("/", 1)[-1])
    return pid is not None and _process_alive(pid)


def _real_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def _check_file(
    paths: DataPaths,
    relative: str,
    run_id: str,
    checksums: dict[str, tuple[int, str]],
    verify_checksums: bool,
    shapes: dict[str, tuple[int, ...]] | None,
) -> list[Finding]:
    """Problems of one stored file; ``shapes`` receives the shape in its ``.npy`` header when
    the file is a density matrix (``None`` for artifacts, which may be any file)."""

    def finding(code: str, message: str) -> list[Finding]:
        return [Finding(code, "error", relative, run_id, message)]

    try:
        stream = open_checked_path(paths(relative), relative)
    except ForeignFile as exc:
        return finding(exc.code, str(exc))
    except FileNotFoundError:
        return finding(FILE_MISSING, "file is missing")
    except OSError as exc:
        return finding(FILE_MISSING, f"file cannot be read ({exc.strerror})")
    with stream:
        size = os.fstat(stream.fileno()).st_size
        expected = checksums.get(relative)
        if expected is not None and size != expected[0]:
            return finding(FILE_SIZE_CHANGED, f"size is {size} bytes, recorded {expected[0]}")
        if shapes is not None:
            try:
                header = read_npy_header(stream)
                check_density_matrix_header(header)
                check_data_size(header, size)
            except NpyFormatError as exc:
                return finding(NPY_DAMAGED, str(exc))
            shapes[relative] = header.shape
        if expected is None:
            return [Finding(NO_CHECKSUM, "warning", relative, run_id, "no checksum recorded")]
        if verify_checksums:
            stream.seek(0)
            if sha256_of_stream(stream)[1] != expected[1]:
                return finding(
                    FILE_CONTENT_CHANGED,
                    "SHA-256 differs from the one recorded: the file was changed",
                )
    return []


def _check_row(
    run_id: str,
    params_json: object,
    metadata_json: object,
    shape: tuple[int, ...] | None,
    rho_checksum: tuple[int, str] | None,
) -> list[Finding]:
    findings = []
    if not isinstance(stored_json(params_json), dict):
        findings.append(
            Finding(PARAMS_NOT_OBJECT, "error", None, run_id, "params is not a JSON object")
        )
    metadata = {} if metadata_json is None else stored_json(metadata_json)
    if not isinstance(metadata, dict):
        findings.append(
            Finding(METADATA_NOT_OBJECT, "error", None, run_id, "metadata is not a JSON object")
        )
        return findings
    state = metadata.get("state")
    if state is not None:
        problem = state_summary_problem(state, shape, rho_checksum and rho_checksum[1])
        if problem:
            message = f"metadata.state {problem}; correct the row or restore the file"
            findings.append(Finding(STATE_MISMATCH, "error", None, run_id, message))
    validation = metadata.get("validation")
    if isinstance(validation, dict) and validation.get("is_valid") is False:
        listed = validation.get("findings")
        reasons = "; ".join(map(str, listed)) if isinstance(listed, list) else ""
        reasons = reasons or "flagged at record time"
        findings.append(
            Finding(NON_PHYSICAL_STATE, "warning", None, run_id, f"non-physical state: {reasons}")
        )
    return findings


def state_summary_problem(
    state: Any, shape: tuple[int, ...] | None, sha256: str | None
) -> str | None:
    """What in a run's ``metadata.state`` contradicts its ``.npy`` (``shape`` from the header,
    ``sha256`` of the file), or ``None``. Fields that are absent are not required."""
    if not isinstance(state, dict):
        return "is not an object"
    dims, stated_shape = state.get("dims"), state.get("shape")
    if "dtype" in state and state["dtype"] != "complex128":
        return f"says dtype {str(state['dtype'])[:40]!r}, the file holds complex128"
    if stated_shape is not None and shape is not None and list(shape) != stated_shape:
        return f"says shape {str(stated_shape)[:60]}, the file holds {list(shape)}"
    if dims is not None:
        if not isinstance(dims, list) or not all(
            type(n) is int and 2 <= n <= 1 << 31 for n in dims
        ):
            return "dims is not a list of integers of at least 2"
        product = 1
        for n in dims:
            product *= n
        d = shape[0] if shape is not None else None
        if isinstance(stated_shape, list) and stated_shape and d is None:
            d = stated_shape[0]
        if d is not None and product != d:
            return f"says dims {str(dims)[:60]} (dimension {product}), the matrix is {d}x{d}"
    if sha256 is not None and "sha256" in state and state["sha256"] != sha256:
        return "sha256 differs from the file's recorded checksum"
    return None
