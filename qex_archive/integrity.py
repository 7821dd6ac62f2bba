"""``check`` and ``gc``: is every row backed by an intact file, and is every file wanted."""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from .archive import ARTIFACTS_DIR, RESULTS_DIR, Archive
from .database import write_transaction
from .errors import ArchiveError
from .jsonvalues import stored_json
from .npyfile import NpyFormatError, check_density_matrix_header, read_header
from .storage import is_temp_name, remove_quietly, sha256_of_file

DATA_DIRS = (RESULTS_DIR, ARTIFACTS_DIR)
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


def check_archive(archive: Archive, *, verify_checksums: bool = True) -> list[Finding]:
    """Compare the database with the files on disk; return every problem found."""
    findings: list[Finding] = []
    conn = archive.conn
    # Under the write lock the rows and the directory listing form one consistent snapshot:
    # writers create files only while holding it.
    with write_transaction(conn):
        quick = conn.execute("PRAGMA quick_check").fetchone()[0]
        if quick != "ok":
            findings.append(Finding("QEX-C009", "error", "qex.db", None, f"SQLite: {quick}"))
        referenced = _referenced_paths(conn)
        on_disk = _files_on_disk(archive)
        checksums = {
            path: (size, sha256)
            for path, size, sha256 in conn.execute("SELECT path, size, sha256 FROM qex_files")
        }
        runs = conn.execute(
            "SELECT run_id, params, metadata, typeof(timestamp) IN ('real', 'integer') "
            "FROM runs ORDER BY run_id"
        ).fetchall()
    for relative in sorted(on_disk - set(referenced)):
        if is_temp_name(Path(relative).name):
            message = "unfinished write left by an interrupted process; 'qex-archive gc' removes it"
            findings.append(Finding("QEX-C006", "error", relative, None, message))
        else:
            message = "file not referenced by any run; 'qex-archive gc' removes it"
            findings.append(Finding("QEX-C005", "error", relative, None, message))
    for directory in _stale_staging(archive):
        message = "left by an interrupted import; 'qex-archive gc' removes it"
        findings.append(
            Finding("QEX-C012", "error", f"{STAGING_DIR}/{directory.name}/", None, message)
        )
    for relative, run_id in sorted(referenced.items()):
        findings.extend(_check_file(archive, relative, run_id, checksums, verify_checksums))
    for run_id, params, metadata, numeric_time in runs:
        if not numeric_time:
            message = "timestamp is not a number (Unix seconds)"
            findings.append(Finding("QEX-C014", "error", None, run_id, message))
        findings.extend(_check_row(run_id, params, metadata))
    return findings


def collect_garbage(archive: Archive, *, dry_run: bool = False) -> list[str]:
    """Remove files under ``results/`` and ``artifacts/`` that no row refers to, and what
    interrupted imports left in ``.staging/``."""
    with write_transaction(archive.conn):
        unwanted = sorted(_files_on_disk(archive) - set(_referenced_paths(archive.conn)))
        stale = _stale_staging(archive)
        if not dry_run:
            for relative in unwanted:
                remove_quietly(archive.resolve_path(relative))
            for directory in stale:
                shutil.rmtree(directory, ignore_errors=True)
    return unwanted + [f"{STAGING_DIR}/{d.name}/" for d in stale]


def _stale_staging(archive: Archive) -> list[Path]:
    """Staging directories of imports whose process is gone (named ``import-{pid}-...``)."""
    root = archive.root / STAGING_DIR
    stale = []
    for directory in sorted(root.iterdir()) if root.is_dir() else ():
        parts = directory.name.split("-")
        pid = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None
        if pid is None or not _process_alive(pid):
            stale.append(directory)
    return stale


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _referenced_paths(conn: sqlite3.Connection) -> dict[str, str]:
    """Every file path the database refers to, with the run it belongs to."""
    referenced: dict[str, str] = {}
    for sql in (
        "SELECT density_matrix_path, run_id FROM runs",
        "SELECT artifact_path, run_id FROM artifacts",
        "SELECT path, run_id FROM qex_files",
    ):
        referenced.update(conn.execute(sql).fetchall())
    return referenced


def _files_on_disk(archive: Archive) -> set[str]:
    found: set[str] = set()
    for sub in DATA_DIRS:
        directory = archive.root / sub
        if directory.is_dir():
            found.update(f"{sub}/{entry.name}" for entry in directory.iterdir() if entry.is_file())
    return found


def _check_file(
    archive: Archive,
    relative: str,
    run_id: str,
    checksums: dict[str, tuple[int, str]],
    verify_checksums: bool,
) -> list[Finding]:
    def finding(code: str, message: str) -> list[Finding]:
        return [Finding(code, "error", relative, run_id, message)]

    try:
        path = archive.resolve_path(relative)
    except ArchiveError as exc:
        return finding("QEX-C010", str(exc))
    if not path.is_file():
        return finding("QEX-C001", "file is missing")
    expected = checksums.get(relative)
    if expected is None:
        return [Finding("QEX-C007", "warning", relative, run_id, "no checksum recorded")]
    size = path.stat().st_size
    if size != expected[0]:
        return finding("QEX-C002", f"size is {size} bytes, recorded {expected[0]}")
    if relative.endswith(".npy"):
        try:
            with path.open("rb") as stream:
                header = read_header(stream)
            check_density_matrix_header(header)
            if header.data_offset + header.data_size != size:
                raise NpyFormatError(".npy data size does not match its header")
        except NpyFormatError as exc:
            return finding("QEX-C004", str(exc))
    if verify_checksums and sha256_of_file(path)[1] != expected[1]:
        return finding("QEX-C003", "SHA-256 differs from the one recorded: the file was changed")
    return []


def _check_row(run_id: str, params_json: object, metadata_json: object) -> list[Finding]:
    findings = []
    if not isinstance(stored_json(params_json), dict):
        findings.append(Finding("QEX-C013", "error", None, run_id, "params is not a JSON object"))
    metadata = {} if metadata_json is None else stored_json(metadata_json)
    if not isinstance(metadata, dict):
        findings.append(Finding("QEX-C011", "error", None, run_id, "metadata is not a JSON object"))
        return findings
    validation = metadata.get("validation")
    if isinstance(validation, dict) and validation.get("is_valid") is False:
        listed = validation.get("findings")
        reasons = "; ".join(map(str, listed)) if isinstance(listed, list) else ""
        reasons = reasons or "flagged at record time"
        findings.append(
            Finding("QEX-C008", "warning", None, run_id, f"non-physical state: {reasons}")
        )
    return findings
