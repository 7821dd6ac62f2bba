"""Turning what a user hands to ``Archive.record`` into the files and rows of one run.

Everything is checked and computed here, before the archive is touched: names, params and
metadata as plain JSON, the time, the state as a canonical matrix, the plugins' backend
description, validation and artifacts, and each file's size and SHA-256.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._jsonvalues import dumps, json_object, to_json_data
from .._timeutil import run_timestamp
from ..errors import InvalidInput, InvalidState
from ..store.paths import artifact_path, rho_path
from ..store.tables import RunRow
from .names import check_name

if TYPE_CHECKING:
    from .._plugin_calls import PluginCalls, PluginProblem
    from ..run import Run
    from ..views.rendering import Renderer

RESERVED_METADATA_KEYS = ("state", "validation", "backend", "qex", "context")


@dataclass(frozen=True)
class PreparedFile:
    relative: str
    chunks: tuple[bytes | memoryview, ...]
    size: int
    sha256: str

    @classmethod
    def of(cls, relative: str, *chunks: bytes | memoryview) -> PreparedFile:
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        return cls(relative, chunks, sum(memoryview(c).nbytes for c in chunks), digest.hexdigest())


@dataclass(frozen=True)
class PreparedRun:
    row: RunRow
    files: list[PreparedFile]
    artifacts: list[tuple[str, str, str]]  # name, relative path, media type


def artifact_files(
    run_id: str, outputs: Sequence[tuple[Renderer, bytes]], taken: frozenset[str] = frozenset()
) -> tuple[list[PreparedFile], list[tuple[str, str, str]]]:
    """The files and artifact rows of rendered outputs. A name in ``taken`` (the current file
    of a run being rendered again) gets a fresh one, so the new file never replaces the old in
    place: the rows switch from one to the other in a single transaction."""
    files, artifacts = [], []
    for renderer, content in outputs:
        relative = artifact_path(run_id, renderer.name, renderer.extension)
        if relative in taken:
            stem, _, extension = relative.rpartition(".")
            relative = f"{stem}-{uuid.uuid4().hex[:8]}.{extension}"
        files.append(PreparedFile.of(relative, content))
        artifacts.append((renderer.name, relative, renderer.media_type))
    return files, artifacts


# a run not stored yet, as plugins see it: (row, params, metadata, rho) -> Run
DraftRun = Callable[[RunRow, dict[str, Any], dict[str, Any], Any], "Run"]


def prepare_run(
    hooks: PluginCalls,
    draft_run: DraftRun,
    capture: bool,
    experiment: object,
    params: object,
    backend: object,
    state: object,
    metadata: object,
    timestamp: object,
    dims: Sequence[int] | None,
    strict: bool,
    renderer_names: Sequence[str],
    attach: Mapping[str, object] | None = None,
    write_early: Callable[[PreparedFile], None] | None = None,
    run_id: str | None = None,
) -> tuple[PreparedRun, list[PluginProblem]]:
    """The files and rows of a run. ``write_early`` is given the density matrix's file as soon
    as it is known, before validation and rendering: the archive starts writing it then.
    ``run_id`` (qex's own code only: the demo's fixed IDs) is checked with
    :func:`check_run_id`; by default the run gets a new random UUID v4."""
    experiment_name = check_name(experiment, "experiment name")
    backend_name = check_name(backend_name_of(backend), "backend")
    params_clean = json_object({} if params is None else params, "params")
    user_metadata = json_object({} if metadata is None else metadata, "metadata")
    for key in RESERVED_METADATA_KEYS:
        if key in user_metadata:
            raise InvalidInput(
                f"metadata key {key!r} is reserved for what qex-archive records; rename it"
            )
    when = time.time() if timestamp is None else run_timestamp(timestamp)

    from ..store.npyfile import header_bytes
    from .states import coerce_state

    attached = []
    if attach:
        from .attachments import serialize

        attached = serialize(hooks, attach, list(hooks.renderers))
    archived = coerce_state(hooks.convert_state(state), dims)
    rho = archived.rho
    run_id = str(uuid.uuid4()) if run_id is None else check_run_id(run_id)
    rho_file = PreparedFile.of(
        rho_path(run_id),
        header_bytes(rho.shape),
        rho.reshape(-1).view("u1").data,  # the matrix's bytes, not a copy
    )
    if write_early is not None:
        write_early(rho_file)
    backend_info, problems = hooks.backend_metadata(backend, backend_name)
    full_metadata: dict[str, Any] = {
        **user_metadata,
        "state": {
            "dims": archived.dims,
            "ordering": "big_endian",
            "source_ordering": archived.source_ordering,
            "source_kind": archived.source_kind,
            "source_dtype": archived.source_dtype,
            "subsystem_labels": to_json_data(archived.subsystem_labels),
            "dtype": "complex128",
            "shape": list(rho.shape),
            "sha256": rho_file.sha256,
        },
    }
    if archived.source_norm is not None:
        full_metadata["state"]["source_norm"] = archived.source_norm
    if backend_info:
        full_metadata["backend"] = backend_info
    if capture:
        from .context import run_context

        full_metadata["context"] = run_context()
    full_metadata["qex"] = {"version": __version__, "plugins": hooks.versions}
    if attached:
        full_metadata["qex"]["attachments"] = [name for name, _ in attached]

    params_json = dumps(params_clean)

    def row(metadata_json: str | None = None) -> RunRow:
        return (
            run_id,
            experiment_name,
            params_json,
            backend_name,
            when,
            rho_file.relative,
            metadata_json,
        )

    def draft() -> Run:
        return draft_run(row(), params_clean, full_metadata, rho)

    validation, more = hooks.validate(draft(), rho)
    problems += more
    full_metadata["validation"] = validation
    if strict and not validation.get("is_valid", True):
        raise InvalidState(
            "state is not physical (" + "; ".join(validation["findings"]) + "); "
            "pass strict=False to store it flagged"
        )
    outputs, more = hooks.render(draft(), rho, renderer_names)
    problems += more
    if problems:
        full_metadata["qex"]["plugin_errors"] = [p.to_dict() for p in problems]
    files, artifacts = artifact_files(run_id, outputs)
    for name, attachment in attached:
        relative = artifact_path(run_id, name, attachment.extension)
        files.append(PreparedFile.of(relative, attachment.content))
        artifacts.append((name, relative, attachment.media_type))
    return PreparedRun(row(dumps(full_metadata)), [rho_file, *files], artifacts), problems


def check_run_id(run_id: object) -> str:
    """A run ID given by qex's own code: a UUID v4 in its canonical form (lower-case hex in
    8-4-4-4-12 groups), as every recorded run has."""
    try:
        parsed = uuid.UUID(run_id) if isinstance(run_id, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.version != 4 or str(parsed) != run_id:
        raise InvalidInput(f"run ID {run_id!r} is not a UUID v4 in canonical form")
    return run_id


def backend_name_of(backend: object) -> object:
    """A backend's name: the text itself, or the object's ``name`` (attribute or method)."""
    if isinstance(backend, str) or backend is None:
        return backend
    name = getattr(backend, "name", None)
    if callable(name):
        name = name()
    return name if isinstance(name, str) and name.strip() else type(backend).__name__
