"""qex's layer of a bundle: ``qex-bundle.json`` and the RO-Crate, read as strict JSON and
checked against the schema and beyond it, and the rows an import will insert.

One rule keeps ``verify`` and ``import`` honest with each other: every value that import
writes to the database is built here by :func:`import_rows`, and ``verify`` builds the same
rows, so whatever import would fail on, verify refuses first with a code. The same checks
(:func:`run_problem`) keep ``pack`` from writing a bundle its own verify would refuse.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..annotations import check_note, check_tag_key, check_tag_value
from ..archive_files import ARTIFACTS_DIR, RESULTS_DIR
from ..errors import QexError
from ..jsonvalues import dumps
from ..names import check_name
from ..run import RunRow
from ..states import state_summary_problem
from ..tables import ArtifactRow, FileRow
from ..timeutil import timestamp_problem
from .container import Container
from .format import (
    BAD_JSON,
    CHECKSUM,
    DESCRIPTION,
    INCONSISTENT,
    MEDIA_TYPES,
    MISSING,
    RO_CRATE,
    SCHEMA,
    VERSION,
    BundleError,
    Limits,
    decode_json,
    parse_json,
    schema_problem,
)


def read_json(container: Container, name: str, expected_sha256: str, limits: Limits) -> Any:
    raw = container.read_small(container.members[name], limits.max_json_size)
    if hashlib.sha256(raw).hexdigest() != expected_sha256:
        raise BundleError(CHECKSUM, "checksum differs from manifest-sha256.txt", name)
    text = decode_json(raw, name, limits)
    del raw  # the parsed value is the larger: do not hold the bytes as well
    return parse_json(text, name, limits)


def read_descriptions(
    container: Container, manifest: dict[str, str], bag_info: dict[str, str], limits: Limits
) -> tuple[dict[str, Any], ImportRows]:
    """The checked bundle description (``qex-bundle.json``) and the rows importing it would
    insert; the RO-Crate is checked for form."""
    description = read_json(container, DESCRIPTION, manifest[DESCRIPTION], limits)
    sizes = {name: container.members[name].file_size for name in manifest}
    rows = check_description(description, bag_info, manifest, sizes)
    ro_crate = read_json(container, RO_CRATE, manifest[RO_CRATE], limits)
    if not isinstance(ro_crate, dict) or not isinstance(ro_crate.get("@graph"), list):
        raise BundleError(
            BAD_JSON, "RO-Crate metadata must be an object with an @graph list", RO_CRATE
        )
    return description, rows


def check_description(
    description: Any, bag_info: dict[str, str], manifest: dict[str, str], sizes: dict[str, int]
) -> ImportRows:
    version = description.get("format_version") if isinstance(description, dict) else None
    if version is not None and version != _bag_version(bag_info):  # absent: the schema says so
        raise BundleError(
            VERSION,
            f"format version {str(version)[:20]} differs from QEX-Bundle-Version "
            f"{bag_info.get('QEX-Bundle-Version')}",
            DESCRIPTION,
        )
    problem = schema_problem(description)
    if problem:
        raise BundleError(SCHEMA, problem, DESCRIPTION)
    if bag_info.get("External-Identifier") != f"urn:uuid:{description['bundle_id']}":
        raise BundleError(
            INCONSISTENT, "External-Identifier differs from the bundle_id", "bag-info.txt"
        )
    referenced: set[str] = set()
    seen_runs: set[str] = set()
    for run in description["runs"]:
        run_id = run["run_id"]
        if run_id in seen_runs:
            raise BundleError(INCONSISTENT, f"run {run_id} is described twice", DESCRIPTION)
        seen_runs.add(run_id)
        problem = run_problem(run)
        if problem:
            raise BundleError(INCONSISTENT, f"run {run_id}: {problem}", DESCRIPTION)
        if version == 1 and ("tags" in run or "notes" in run):
            raise BundleError(
                INCONSISTENT, f"run {run_id} has tags or notes, which format 1 has not", DESCRIPTION
            )
        rho = run["density_matrix"]
        if rho["path"] != f"data/results/{run_id}_rho.npy":
            raise BundleError(INCONSISTENT, f"run {run_id} points at {rho['path']}", DESCRIPTION)
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
            if record["sha256"] != manifest[path] or record["size"] != sizes[path]:
                raise BundleError(
                    INCONSISTENT,
                    "size or checksum differs between qex-bundle.json and the bag",
                    path,
                )
    report = description.get("report")
    if report is not None:
        if version != 2:
            raise BundleError(INCONSISTENT, "a report, which format 1 has not", DESCRIPTION)
        if (
            report["path"] not in manifest
            or report["sha256"] != manifest[report["path"]]
            or report["size"] != sizes[report["path"]]
        ):
            raise BundleError(
                INCONSISTENT,
                "size or checksum differs between qex-bundle.json and the bag",
                report["path"],
            )
        referenced.add(report["path"])
    for name in sorted(set(manifest) - referenced - {DESCRIPTION, RO_CRATE}):
        if name.startswith("data/artifacts/"):
            raise BundleError(INCONSISTENT, "artifact of a run the bundle does not describe", name)
        raise BundleError(INCONSISTENT, "file not described in qex-bundle.json", name)
    try:
        return import_rows(description["runs"], description["bundle_id"])
    except QexError as exc:
        raise BundleError(INCONSISTENT, str(exc), DESCRIPTION) from None


def _bag_version(bag_info: dict[str, str]) -> int | None:
    text = bag_info.get("QEX-Bundle-Version", "")
    return int(text) if text.isdigit() else None


def run_problem(run: dict[str, Any]) -> str | None:
    """What, beyond the schema, keeps a run record from being stored and shown: names that
    are not one-line text, a timestamp outside the years 1900-9999, a state summary that
    contradicts the density matrix record. ``None`` when nothing does."""
    for key, what in (("experiment_name", "experiment name"), ("backend_name", "backend")):
        try:
            check_name(run[key], what)
        except QexError as exc:
            return str(exc)
    problem = timestamp_problem(run["timestamp"])
    if problem:
        return f"timestamp {problem}"
    rho = run["density_matrix"]
    shape = rho["shape"]
    if len(shape) != 2 or shape[0] != shape[1]:
        return "the density matrix is not square"
    for key, value in run.get("tags", {}).items():
        try:
            check_tag_value(check_tag_key(key), value)
        except QexError as exc:
            return str(exc)
    for note in run.get("notes", []):
        try:
            check_note(note["text"])
        except QexError as exc:
            return str(exc)
        problem = timestamp_problem(note["created"])
        if problem:
            return f"a note's time {problem}"
    for artifact in run["artifacts"]:
        extension = artifact["path"].rsplit(".", 1)[-1]
        expected = MEDIA_TYPES.get(extension)
        if expected is None:
            known = ", ".join(f".{ext}" for ext in MEDIA_TYPES)
            return f"artifact {artifact['name']!r} is a .{extension} file; bundles carry {known}"
        if artifact["media_type"] != expected:
            return (
                f"artifact {artifact['name']!r} (.{extension}) is declared as "
                f"{artifact['media_type']!r}, not {expected!r}"
            )
    metadata = run["metadata"]
    if isinstance(metadata, dict) and "state" in metadata:
        problem = state_summary_problem(metadata["state"], tuple(shape), rho["sha256"])
        if problem:
            return f"metadata.state {problem}"
    return None


@dataclass
class ImportRows:
    runs: list[RunRow]
    artifacts: list[ArtifactRow]
    files: list[FileRow]
    tags: list[tuple[str, str, str]] = field(default_factory=list)  # run_id, key, value
    notes: list[tuple[str, float, str]] = field(default_factory=list)  # run_id, created, text

    def of_runs(self, run_ids: set[str]) -> ImportRows:
        return ImportRows(
            [row for row in self.runs if row[0] in run_ids],
            [row for row in self.artifacts if row[0] in run_ids],
            [row for row in self.files if row[1] in run_ids],
            [row for row in self.tags if row[0] in run_ids],
            [row for row in self.notes if row[0] in run_ids],
        )


def import_rows(runs: Sequence[dict[str, Any]], bundle_id: str) -> ImportRows:
    """The rows importing ``runs`` inserts, each value checked to be storable: text that is
    valid UTF-8, a timestamp that is a finite float. :class:`QexError` names what is not."""
    rows = ImportRows([], [], [])
    for run in runs:
        run_id = run["run_id"]
        rho_path = f"{RESULTS_DIR}/{run_id}_rho.npy"
        params = _utf8(dumps(run["params"]), run_id, "params")
        metadata = (
            None if run["metadata"] is None else _utf8(dumps(run["metadata"]), run_id, "metadata")
        )
        try:
            timestamp = float(run["timestamp"])
        except OverflowError:
            raise QexError(f"run {run_id}: timestamp is too large") from None
        rows.runs.append(
            (
                run_id,
                run["experiment_name"],
                params,
                run["backend_name"],
                timestamp,
                rho_path,
                metadata,
            )
        )
        rho = run["density_matrix"]
        rows.files.append((rho_path, run_id, rho["size"], rho["sha256"], bundle_id))
        for artifact in run["artifacts"]:
            relative = f"{ARTIFACTS_DIR}/{artifact['path'].rsplit('/', 1)[1]}"
            rows.artifacts.append((run_id, artifact["name"], relative, artifact["media_type"]))
            rows.files.append((relative, run_id, artifact["size"], artifact["sha256"], bundle_id))
        rows.tags.extend((run_id, key, value) for key, value in run.get("tags", {}).items())
        rows.notes.extend(
            (run_id, float(note["created"]), note["text"]) for note in run.get("notes", [])
        )
    return rows


def source_name_of(path: str | os.PathLike[str]) -> str:
    """The bundle's file name as text, whatever bytes the file system gave it."""
    name = os.path.basename(os.fsencode(path))
    return name.decode("utf-8", "backslashreplace")


def _utf8(text: str, run_id: str, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise QexError(f"run {run_id}: {what} hold a lone surrogate, which is not text") from None
    return text
