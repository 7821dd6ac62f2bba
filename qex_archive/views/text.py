"""Plain-text views of runs for people at a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._jsonvalues import dumps
from .._timeutil import iso_local, short_time
from ..errors import ArchiveError
from .terminal import visible
from .values import DAMAGED, format_params, format_tags, number, params_text, run_params, verdict

if TYPE_CHECKING:
    from ..run import Artifact, Run

MIN_PARAMS_WIDTH = 20


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _context_lines(run: Run, metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """The code and environment that made the run, and its seed (a ``seed`` param or
    metadata entry, by convention)."""
    lines = []
    context = metadata.get("context")
    if isinstance(context, dict):
        git = context.get("git") if isinstance(context.get("git"), dict) else None
        script = context.get("script") if isinstance(context.get("script"), dict) else None
        if git:
            where = git.get("branch") or "detached HEAD"
            dirty = ", uncommitted changes" if git.get("dirty") else ""
            lines.append(("code", f"git {str(git.get('commit'))[:12]} ({where}{dirty})"))
        if script:
            lines.append(
                ("script", f"{script.get('path')}  sha256 {str(script.get('sha256'))[:16]}…")
            )
        environment = context.get("environment")
        if isinstance(environment, dict):
            packages = environment.get("packages") or {}
            shown = (
                " ".join(f"{k} {v}" for k, v in packages.items())
                if isinstance(packages, dict)
                else ""
            )
            lines.append(("environment", f"Python {environment.get('python')} {shown}".strip()))
    params = run_params(run) or {}
    seed = params.get("seed", metadata.get("seed"))
    if seed is not None:
        lines.append(("seed", dumps(seed)))
    return lines


def format_dims(dims: Sequence[int] | None) -> str:
    if not dims:
        return "?"
    if all(d == 2 for d in dims):
        return f"{len(dims)}q"
    return "x".join(str(d) for d in dims)


def run_line(run: Run) -> str:
    return (
        f"{run.run_id[:8]}  {short_time(run.timestamp)}  {run.experiment_name}  {run.backend_name}"
    )


def runs_table(
    runs: Sequence[Run], width: int | None = None, tags: dict[str, dict[str, str]] | None = None
) -> str:
    """The runs as a table; with ``width`` (a terminal's), the PARAMS column is cut to fit.
    ``tags`` (by run ID) adds a TAGS column when any run has one."""
    with_tags = bool(tags) and any(tags.values())  # type: ignore[union-attr]
    header: tuple[str, ...] = ("RUN", "TIME", "EXPERIMENT", "BACKEND", "DIMS", "PURITY", "VALID")
    header += ("TAGS", "PARAMS") if with_tags else ("PARAMS",)
    rows: list[tuple[str, ...]] = [header]
    for run in runs:
        try:
            validation, dims = run.validation, format_dims(run.dims)
        except ArchiveError:
            validation, dims = {}, "?"
        rows.append(
            (
                run.run_id[:8],
                short_time(run.timestamp),
                run.experiment_name,
                run.backend_name,
                dims,
                number(validation.get("purity")),
                verdict(validation.get("is_valid")),
                *([format_tags(tags[run.run_id])] if with_tags and tags else []),
                params_text(run, short=True),
            )
        )
    if len(rows) == 1:
        return "no runs match"
    rows = [tuple(visible(cell) for cell in row) for row in rows]  # width as shown
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    room = None if width is None else max(MIN_PARAMS_WIDTH, width - sum(widths) - 2 * len(widths))
    return "\n".join(
        (
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
            + "  "
            + (row[-1] if room is None else _clip(row[-1], room))
        ).rstrip()
        for row in rows
    )


# A note a plugin puts in the first lines of a text attachment (say, what an OpenQASM copy of
# a circuit leaves out), shown by ``show`` beside the attachment's name.
NOTE_MARKERS = ("// qex-note: ", "# qex-note: ")
NOTE_LINES, NOTE_BYTES = 5, 4096


def _attachment_notes(artifacts: Sequence[Artifact], attached: set[str]) -> list[tuple[str, str]]:
    from ..store.paths import read_data_file

    notes: list[tuple[str, str]] = []
    for artifact in artifacts:
        if artifact.name not in attached or not artifact.media_type.startswith("text/"):
            continue
        try:
            head = read_data_file(artifact.path, artifact.relative_path, NOTE_BYTES)
        except (ArchiveError, OSError):
            continue  # a missing or foreign file: the attachment line names it, check reports it
        for line in head.decode("utf-8", "replace").splitlines()[:NOTE_LINES]:
            notes.extend(
                (artifact.name, line[len(marker) :].strip())
                for marker in NOTE_MARKERS
                if line.startswith(marker)
            )
    return notes


def run_details(run: Run) -> str:
    """What ``show`` prints: a label and a value a line."""
    lines = run_detail_lines(run)
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in lines)


def run_detail_lines(run: Run, *, listed: bool = True) -> list[tuple[str, str]]:
    """``show``'s (label, value) pairs; ``listed=False`` leaves out the lists a page shows on
    its own (validation findings, the run's files, notes)."""
    from ..recording.prepare import RESERVED_METADATA_KEYS

    problems: list[str] = []
    try:
        params = format_params(run.params) or "(none)"
    except ArchiveError as exc:
        params, problems = DAMAGED, [str(exc)]
    metadata: dict[str, Any] = {}
    try:
        metadata = run.metadata or {}
    except ArchiveError as exc:
        problems.append(str(exc))
    state = run.state_info if metadata else {}
    validation = run.validation if metadata else {}
    lines = [
        ("run", run.run_id),
        ("experiment", run.experiment_name),
        ("backend", run.backend_name),
        ("time", f"{iso_local(run.timestamp)}  ({run.timestamp})"),
        ("params", params),
        *(("damaged", problem) for problem in problems),
    ]
    if state:
        shape = "x".join(str(n) for n in state.get("shape", []))
        lines.append(
            (
                "state",
                f"dims {state.get('dims')} ({format_dims(state.get('dims'))}), "
                f"{shape} {state.get('dtype', '')}, ordering {state.get('ordering')}"
                + (
                    f" (from {state['source_ordering']})"
                    if state.get("source_ordering") not in (None, state.get("ordering"))
                    else ""
                ),
            )
        )
    if validation:
        physical = verdict(validation.get("is_valid"), "physical", "NOT PHYSICAL")
        lines.append(
            (
                "validation",
                f"{physical}: trace {number(validation.get('trace'), '.6g')}, "
                f"purity {number(validation.get('purity'))}, "
                f"entropy {number(validation.get('von_neumann_entropy_bits'))} bits, "
                f"eigenvalues [{number(validation.get('min_eigenvalue'), '.4g')}, "
                f"{number(validation.get('max_eigenvalue'), '.4g')}]",
            )
        )
        if listed:
            lines.extend(("finding", text) for text in validation.get("findings") or [])
    lines.append(("density", f"{run.density_matrix_path}  sha256 {state.get('sha256', '?')}"))
    artifacts = run.artifacts
    attached = set(run.attachment_names)
    if not listed:
        lines.extend(_attachment_notes(artifacts, attached))
    elif artifacts:
        lines.extend(
            (
                "attachment" if a.name in attached else "artifact",
                f"{a.name}: {a.relative_path} ({a.media_type})",
            )
            for a in artifacts
        )
        lines.extend(_attachment_notes(artifacts, attached))
    else:
        lines.append(("artifacts", "(none)"))
    extra = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA_KEYS}
    if extra:
        lines.append(("metadata", dumps(extra)))
    provenance = run.provenance
    if provenance:
        lines.append(
            (
                "imported",
                f"{iso_local(provenance['imported_at'])} from {provenance['source_name']} "
                f"(bundle {provenance['bundle_id']}, sha256 {provenance['bundle_sha256'][:16]}…)",
            )
        )
        if provenance.get("bundle_note"):
            lines.append(("bundle note", provenance["bundle_note"]))
    tags = run.tags
    if tags:
        lines.append(("tags", format_tags(tags)))
    if listed:
        lines.extend(
            ("note", f"{iso_local(entry['created'])}  {entry['text']}") for entry in run.notes
        )
    lines.extend(_context_lines(run, metadata))
    backend = metadata.get("backend")
    if backend:
        lines.append(("backend info", dumps(backend)))
    return lines
