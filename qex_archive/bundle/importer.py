"""Bringing a verified bundle into an archive: stage, check conflicts, then one transaction."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..archive import ARTIFACTS_DIR, RESULTS_DIR, Archive, open_archive
from ..database import write_transaction
from ..errors import InvalidInput
from ..integrity import STAGING_DIR
from ..jsonvalues import dumps, stored_json
from ..storage import StagingDirectory, fsync_path
from .format import CONFLICT, BundleError, Limits
from .reader import BundleContents, read_bundle

CONFLICT_POLICIES = ("error", "skip")


@dataclass
class ImportReport:
    bundle_id: str
    bundle_sha256: str
    imported: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle_id,
            "bundle_sha256": self.bundle_sha256,
            "imported": self.imported,
            "already_present": self.identical,
            "conflicts_skipped": self.conflicts,
            "dry_run": self.dry_run,
        }


def import_bundle(
    archive: Archive,
    path: str | os.PathLike[str],
    *,
    on_conflict: str = "error",
    dry_run: bool = False,
    limits: Limits | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Merge the runs of a bundle into ``archive``, keeping their run IDs.

    Everything is verified before the archive is touched. Runs already present with the same
    content are left alone (importing a bundle twice changes nothing); a run ID present with
    other content is a conflict: nothing is imported unless ``on_conflict="skip"``.
    """
    if on_conflict not in CONFLICT_POLICIES:
        raise InvalidInput(
            f"on_conflict must be one of {', '.join(CONFLICT_POLICIES)}, not {on_conflict!r}"
        )
    if dry_run:
        contents = read_bundle(path, limits, progress=progress)
        report = _plan(archive, contents)
        report.dry_run = True
        _refuse_conflicts(report, on_conflict, dry_run=True)
        return report
    staging = _new_staging_dir(archive)
    try:
        with StagingDirectory(staging) as staged:
            # Member names were matched against the whitelist; the base name is qex's own.
            contents = read_bundle(
                path,
                limits,
                sink=lambda member: staged.create(member.rsplit("/", 1)[1]),
                progress=progress,
            )
            staged.sync()
        with write_transaction(archive.conn):
            report = _plan(archive, contents)
            _refuse_conflicts(report, on_conflict, dry_run=False)
            new = [run for run in contents.runs if run["run_id"] in set(report.imported)]
            _move_into_place(archive, staging, new)
            _insert(archive, contents, new, source_name=Path(path).name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def unpack_bundle(
    path: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    limits: Limits | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Create a new archive in ``directory`` holding the bundle's runs."""
    target = Path(directory)
    if (target / "qex.db").exists() or (target.is_dir() and any(target.iterdir())):
        raise InvalidInput(f"{target} is not empty; unpack into a new directory, or use 'import'")
    created = not target.exists()
    archive = open_archive(target)
    try:
        return import_bundle(archive, path, limits=limits, progress=progress)
    except BaseException:
        archive.close()
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        archive.close()


def _new_staging_dir(archive: Archive) -> Path:
    root = archive.root / STAGING_DIR
    root.mkdir(exist_ok=True)
    staging = root / f"import-{os.getpid()}-{secrets.token_hex(6)}"
    staging.mkdir()
    return staging


def _plan(archive: Archive, contents: BundleContents) -> ImportReport:
    report = ImportReport(contents.bundle_id, contents.sha256)
    for run in contents.runs:
        existing = archive.conn.execute(
            "SELECT experiment_name, params, backend_name, timestamp, metadata FROM runs "
            "WHERE run_id = ?",
            (run["run_id"],),
        ).fetchone()
        if existing is None:
            report.imported.append(run["run_id"])
            continue
        stored_sha = archive.conn.execute(
            "SELECT sha256 FROM qex_files WHERE run_id = ? AND path LIKE 'results/%'",
            (run["run_id"],),
        ).fetchone()
        same = (
            existing[0] == run["experiment_name"]
            and stored_json(existing[1]) == run["params"]
            and existing[2] == run["backend_name"]
            and existing[3] == run["timestamp"]
            and (stored_json(existing[4]) if existing[4] is not None else None) == run["metadata"]
            and stored_sha is not None
            and stored_sha[0] == run["density_matrix"]["sha256"]
        )
        (report.identical if same else report.conflicts).append(run["run_id"])
    return report


def _refuse_conflicts(report: ImportReport, on_conflict: str, *, dry_run: bool) -> None:
    if report.conflicts and on_conflict == "error":
        shown = ", ".join(report.conflicts[:10]) + (" ..." if len(report.conflicts) > 10 else "")
        verb = "would import" if dry_run else "imported"
        raise BundleError(
            CONFLICT,
            f"{len(report.conflicts)} run ID(s) exist here with different content: {shown}; "
            f"nothing {verb}; pass --on-conflict skip to import the others",
        )


def _move_into_place(archive: Archive, staging: Path, runs: list[dict[str, Any]]) -> None:
    """Rename staged files to their final names (same file system, so atomic); the caller
    holds the write lock and commits the rows afterwards."""
    for run in runs:
        for record in [run["density_matrix"], *run["artifacts"]]:
            name = Path(record["path"]).name
            directory = RESULTS_DIR if record is run["density_matrix"] else ARTIFACTS_DIR
            os.replace(staging / name, archive.root / directory / name)
    for directory in (RESULTS_DIR, ARTIFACTS_DIR):
        fsync_path(archive.root / directory)


def _insert(
    archive: Archive, contents: BundleContents, runs: list[dict[str, Any]], *, source_name: str
) -> None:
    now = time.time()
    run_rows, artifact_rows, file_rows, import_rows = [], [], [], []
    for run in runs:
        run_id = run["run_id"]
        rho_path = f"{RESULTS_DIR}/{run_id}_rho.npy"
        run_rows.append(
            (
                run_id,
                run["experiment_name"],
                dumps(run["params"]),
                run["backend_name"],
                float(run["timestamp"]),
                rho_path,
                None if run["metadata"] is None else dumps(run["metadata"]),
            )
        )
        rho = run["density_matrix"]
        file_rows.append((rho_path, run_id, rho["size"], rho["sha256"], contents.bundle_id))
        for artifact in run["artifacts"]:
            relative = f"{ARTIFACTS_DIR}/{artifact['path'].rsplit('/', 1)[1]}"
            artifact_rows.append((run_id, artifact["name"], relative, artifact["media_type"]))
            file_rows.append(
                (relative, run_id, artifact["size"], artifact["sha256"], contents.bundle_id)
            )
        import_rows.append((run_id, contents.bundle_id, contents.sha256, source_name, now))
    archive.conn.executemany(
        "INSERT INTO runs (run_id, experiment_name, params, backend_name, timestamp, "
        "density_matrix_path, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)",
        run_rows,
    )
    archive.conn.executemany(
        "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
        "VALUES (?, ?, ?, ?)",
        artifact_rows,
    )
    archive.conn.executemany(
        "INSERT INTO qex_files (path, run_id, size, sha256, origin) VALUES (?, ?, ?, ?, ?)",
        file_rows,
    )
    archive.conn.executemany(
        "INSERT INTO qex_imports (run_id, bundle_id, bundle_sha256, source_name, imported_at) "
        "VALUES (?, ?, ?, ?, ?)",
        import_rows,
    )
