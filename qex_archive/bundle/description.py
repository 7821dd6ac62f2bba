"""qex's layer of a bundle: ``qex-bundle.json`` and the RO-Crate, read as strict JSON one run
at a time (:mod:`.jsonstream`), checked against the schema and beyond it, and the rows an
import will insert.

One rule keeps ``verify`` and ``import`` honest with each other: every value that import
writes to the database is built here by :func:`rows_of`, and ``verify`` builds the same
rows, so whatever import would fail on, verify refuses first with a code. The same checks
(:func:`run_problem`) keep ``pack`` from writing a bundle its own verify would refuse.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .._jsonvalues import dumps, is_text
from .._timeutil import timestamp_problem
from ..errors import QexError
from ..recording.names import check_name
from ..store.annotations import check_note, check_tag_key, check_tag_value
from ..store.integrity import state_summary_problem
from ..store.paths import ARTIFACTS_DIR, artifact_path, rho_path
from ..store.tables import ArtifactRow, FileRow, RunRow
from .bag import Manifest
from .container import Container
from .format import (
    BAD_JSON,
    CHECKSUM,
    DESCRIPTION,
    HEAD,
    INCONSISTENT,
    MEDIA_TYPES,
    MISSING,
    RO_CRATE,
    SCHEMA,
    VERSION,
    BundleError,
    Limits,
    schema_problem,
)
from .jsonstream import DOCUMENT, ELEMENT, walk_object

MAX_RUNS = 1_000_000  # the schema's maxItems of runs


@dataclass
class Summary:
    """What ``inspect`` shows of the runs, gathered as they go by."""

    runs: int = 0
    experiments: Counter[str] = field(default_factory=Counter)
    backends: Counter[str] = field(default_factory=Counter)
    first: float | None = None
    last: float | None = None

    def add(self, run: dict[str, Any]) -> None:
        self.runs += 1
        self.experiments[run["experiment_name"]] += 1
        self.backends[run["backend_name"]] += 1
        timestamp = run["timestamp"]
        self.first = timestamp if self.first is None else min(self.first, timestamp)
        self.last = timestamp if self.last is None else max(self.last, timestamp)


@dataclass
class Description:
    """The checked description: its head (everything but the runs), what the runs add up to,
    and each density matrix's shape by member name, for the payload check."""

    head: dict[str, Any]
    summary: Summary
    shapes: list[tuple[int, ...] | None]  # by the member's row in the ZIP layer's table


def read_descriptions(
    container: Container, manifest: Manifest, bag_info: dict[str, str], limits: Limits
) -> Description:
    """Check the bundle description (``qex-bundle.json``) run by run, building the rows
    importing each run would insert, and the RO-Crate for form; neither is held whole."""
    check = _DescriptionCheck(container, bag_info, manifest)
    head: dict[str, Any] = {}
    for kind, key, value in walk_object(
        checked_chunks(container, DESCRIPTION, manifest[DESCRIPTION]), DESCRIPTION, limits, "runs"
    ):
        if kind == ELEMENT:
            check.run(value)
        elif kind == DOCUMENT:
            problem = schema_problem(value)
            raise BundleError(SCHEMA, problem or "must be a JSON object", DESCRIPTION)
        else:
            head[key] = value
    check.finish(head)
    _check_ro_crate(container, manifest, limits)
    return Description(head, check.summary, check.shapes)


def description_runs(
    container: Container,
    manifest: Manifest,
    limits: Limits,
    progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """The runs of a description already checked by :func:`read_descriptions`, read again
    one by one (``progress`` told of the bytes as they are read); :class:`BundleError` at the
    end if its bytes changed since."""
    chunks = checked_chunks(container, DESCRIPTION, manifest[DESCRIPTION], progress)
    for kind, _, value in walk_object(chunks, DESCRIPTION, limits, "runs"):
        if kind == ELEMENT:
            yield value


def checked_chunks(
    container: Container,
    name: str,
    expected_sha256: str,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The member's bytes; after the last, :class:`BundleError` unless they hash to what the
    manifest says (so nothing read from a member that fails goes further than the caller's
    transaction or check)."""
    digest = hashlib.sha256()
    for chunk in container.read(container.members[name], progress):
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != expected_sha256:
        raise BundleError(CHECKSUM, "checksum differs from manifest-sha256.txt", name)


def _check_ro_crate(container: Container, manifest: Manifest, limits: Limits) -> None:
    graph = False
    for kind, key, value in walk_object(
        checked_chunks(container, RO_CRATE, manifest[RO_CRATE]),
        RO_CRATE,
        limits,
        "@graph",
        keep=False,  # only its form matters here: nothing of it is built
    ):
        graph = graph or (key == "@graph" and (kind == ELEMENT or isinstance(value, list)))
        if kind == DOCUMENT:
            graph = False
    if not graph:
        raise BundleError(
            BAD_JSON, "RO-Crate metadata must be an object with an @graph list", RO_CRATE
        )


class _DescriptionCheck:
    """The checks of each run against the schema, the bag and the runs before it, and of the
    head once the whole description has been read."""

    def __init__(self, container: Container, bag_info: dict[str, str], manifest: Manifest) -> None:
        self.members = container.members
        self.manifest = manifest
        self.version = _bag_version(bag_info)
        self.bag_info = bag_info
        self.bundle_id = bag_info.get("External-Identifier", "").removeprefix("urn:uuid:")
        # by the member's row: whether something described it, and a density matrix's shape
        self.described = bytearray(len(self.members))
        for name in (DESCRIPTION, RO_CRATE):
            self.described[self.members.row(name) or 0] = 1
        self.summary = Summary()
        self.shapes: list[tuple[int, ...] | None] = [None] * len(self.members)
        self._shape_objects: dict[tuple[int, ...], tuple[int, ...]] = {}

    def run(self, run: Any) -> ImportRows:
        index = self.summary.runs
        if index >= MAX_RUNS:
            raise BundleError(SCHEMA, f"at runs: more than {MAX_RUNS:,} runs", DESCRIPTION)
        problem = schema_problem(run, "run", at=f"runs/{index}")
        if problem:
            raise BundleError(SCHEMA, problem, DESCRIPTION)
        run_id = run["run_id"]
        rho = run["density_matrix"]
        if rho["path"] != f"data/{rho_path(run_id)}":
            raise BundleError(INCONSISTENT, f"run {run_id} points at {rho['path']}", DESCRIPTION)
        row = self.members.row(rho["path"])
        if row is not None and self.described[row]:
            raise BundleError(INCONSISTENT, f"run {run_id} is described twice", DESCRIPTION)
        problem = run_problem(run)
        if problem:
            raise BundleError(INCONSISTENT, f"run {run_id}: {problem}", DESCRIPTION)
        if self.version == 1 and ("tags" in run or "notes" in run):
            raise BundleError(
                INCONSISTENT, f"run {run_id} has tags or notes, which format 1 has not", DESCRIPTION
            )
        files = [rho]
        names: set[str] = set()
        for artifact in run["artifacts"]:
            extension = artifact["path"].rsplit(".", 1)[-1]
            if (
                artifact["path"] != f"data/{artifact_path(run_id, artifact['name'], extension)}"
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
            self._describe(record, f"described for run {run_id} but not in the manifest")
        shape = tuple(rho["shape"])
        self.shapes[self.members.row(rho["path"]) or 0] = self._shape_objects.setdefault(
            shape, shape
        )
        self.summary.add(run)
        try:
            return rows_of(run, self.bundle_id)
        except QexError as exc:
            raise BundleError(INCONSISTENT, str(exc), DESCRIPTION) from None

    def _describe(self, record: dict[str, Any], missing: str) -> None:
        path = record["path"]
        row = self.members.row(path)
        if row is None or not self.manifest.listed(row):
            raise BundleError(MISSING, missing, path)
        if self.described[row]:
            raise BundleError(INCONSISTENT, "described twice", path)
        self.described[row] = 1
        if (
            record["sha256"] != self.manifest.digest(row)
            or record["size"] != self.members.at(row).file_size
        ):
            raise BundleError(
                INCONSISTENT, "size or checksum differs between qex-bundle.json and the bag", path
            )

    def finish(self, head: dict[str, Any]) -> None:
        version = head.get("format_version")
        if version is not None and version != self.version:  # absent: the schema says so
            raise BundleError(
                VERSION,
                f"format version {str(version)[:20]} differs from QEX-Bundle-Version "
                f"{self.bag_info.get('QEX-Bundle-Version')}",
                DESCRIPTION,
            )
        streamed = self.summary.runs > 0 and "runs" not in head
        # runs streamed were checked one by one; runs absent, empty or not a list are not
        problem = schema_problem(head, HEAD) if streamed else schema_problem(head)
        if problem:
            raise BundleError(SCHEMA, problem, DESCRIPTION)
        if self.bag_info.get("External-Identifier") != f"urn:uuid:{head['bundle_id']}":
            raise BundleError(
                INCONSISTENT, "External-Identifier differs from the bundle_id", "bag-info.txt"
            )
        report = head.get("report")
        if report is not None:
            if version != 2:
                raise BundleError(INCONSISTENT, "a report, which format 1 has not", DESCRIPTION)
            row = self.members.row(report["path"])
            if (
                row is None
                or not self.manifest.listed(row)
                or report["sha256"] != self.manifest.digest(row)
                or report["size"] != self.members.at(row).file_size
            ):
                raise BundleError(
                    INCONSISTENT,
                    "size or checksum differs between qex-bundle.json and the bag",
                    report["path"],
                )
            self.described[row] = 1
        for row, described in enumerate(self.described):
            if described or not self.manifest.listed(row):
                continue
            name = self.members.name(row)
            if name.startswith("data/artifacts/"):
                raise BundleError(
                    INCONSISTENT, "artifact of a run the bundle does not describe", name
                )
            raise BundleError(INCONSISTENT, "file not described in qex-bundle.json", name)


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
    runs: list[RunRow] = field(default_factory=list)
    artifacts: list[ArtifactRow] = field(default_factory=list)
    files: list[FileRow] = field(default_factory=list)
    tags: list[tuple[str, str, str]] = field(default_factory=list)  # run_id, key, value
    notes: list[tuple[str, float, str]] = field(default_factory=list)  # run_id, created, text

    def extend(self, other: ImportRows) -> None:
        self.runs += other.runs
        self.artifacts += other.artifacts
        self.files += other.files
        self.tags += other.tags
        self.notes += other.notes


def rows_of(run: dict[str, Any], bundle_id: str) -> ImportRows:
    """The rows importing ``run`` inserts, each value checked to be storable: text that is
    valid UTF-8, a timestamp that is a finite float. :class:`QexError` names what is not."""
    run_id = run["run_id"]
    stored_rho = rho_path(run_id)
    params = _utf8(dumps(run["params"]), run_id, "params")
    metadata = (
        None if run["metadata"] is None else _utf8(dumps(run["metadata"]), run_id, "metadata")
    )
    try:
        timestamp = float(run["timestamp"])
    except OverflowError:
        raise QexError(f"run {run_id}: timestamp is too large") from None
    rho = run["density_matrix"]
    rows = ImportRows(
        [
            (
                run_id,
                run["experiment_name"],
                params,
                run["backend_name"],
                timestamp,
                stored_rho,
                metadata,
            )
        ],
        [],
        [(stored_rho, run_id, rho["size"], rho["sha256"], bundle_id)],
        [(run_id, key, value) for key, value in run.get("tags", {}).items()],
        [(run_id, float(note["created"]), note["text"]) for note in run.get("notes", [])],
    )
    for artifact in run["artifacts"]:
        relative = f"{ARTIFACTS_DIR}/{artifact['path'].rsplit('/', 1)[1]}"
        rows.artifacts.append((run_id, artifact["name"], relative, artifact["media_type"]))
        rows.files.append((relative, run_id, artifact["size"], artifact["sha256"], bundle_id))
    return rows


def source_name_of(path: str | os.PathLike[str]) -> str:
    """The bundle's file name as text, whatever bytes the file system gave it; of a URL, the
    last part of its path, never its credentials or its query string (a pre-signed URL's
    signature)."""
    text = os.fspath(path)
    if isinstance(text, str) and "://" in text:
        from urllib.parse import unquote, urlsplit

        try:
            text = unquote(urlsplit(text).path)
        except ValueError:
            text = text.split("?", 1)[0].split("#", 1)[0]
        return text.rstrip("/").rsplit("/", 1)[-1]
    name = os.path.basename(os.fsencode(text))
    return name.decode("utf-8", "backslashreplace")


def _utf8(text: str, run_id: str, what: str) -> str:
    if not is_text(text):
        raise QexError(f"run {run_id}: {what} hold a lone surrogate, which is not text")
    return text
