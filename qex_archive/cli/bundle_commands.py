"""Commands for sharing: pack, inspect, verify, import and unpack bundles."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import InvalidInput
from . import (
    F,
    FilePath,
    GrowingBar,
    cli,
    completes,
    counted,
    emit_json,
    filter_options,
    open_from,
    progress_bar,
    say,
)

if TYPE_CHECKING:
    from ..store.query import RunFilter


def limit_options(command: F) -> F:
    """Caps on what a bundle may hold, for large legitimate bundles."""
    options = [
        click.option(
            "--max-members", type=click.IntRange(min=1), help="Most ZIP members (default 300,000)."
        ),
        click.option("--max-total-size", metavar="BYTES", help="Most bytes in all (default 64G)."),
        click.option(
            "--max-file-size", metavar="BYTES", help="Most bytes in one file (default 16G)."
        ),
        click.option(
            "--max-ratio",
            type=click.FloatRange(min=1),
            help="Highest compression ratio (default 200).",
        ),
        click.option("--max-json-size", metavar="BYTES", help="Largest JSON member (default 32M)."),
        click.option(
            "--storage-option",
            "storage_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="An fsspec option for a bundle at a URL (endpoint_url=..., anon=true).",
        ),
        click.option(
            "--max-json-values",
            type=click.IntRange(min=1),
            help="Most values in a JSON member (default 1,000,000).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _local_size(bundle: str) -> int:
    from ..remote.transfer import is_url

    path = Path(bundle)
    return path.stat().st_size if not is_url(bundle) and path.is_file() else 0


def storage_of(options: dict[str, Any]) -> dict[str, Any]:
    """The ``--storage-option`` values, taken out of the command's options."""
    from ..remote.transfer import parse_storage_options

    return parse_storage_options(options.pop("storage_options", ()))


def build_limits(options: dict[str, Any]) -> Any:
    from ..bundle import Limits

    values: dict[str, Any] = {}
    keys = (
        "max_members",
        "max_total_size",
        "max_file_size",
        "max_ratio",
        "max_json_size",
        "max_json_values",
    )
    for key in keys:
        value = options.pop(key, None)
        if value is not None:
            values[key] = _byte_size(value, key) if key.endswith("size") else value
    return Limits(**values)


def _byte_size(text: str, key: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    number, unit = text.strip().upper().rstrip("B"), ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    option = "--" + key.replace("_", "-")
    try:
        size = int(float(number) * units[unit])
    except (ValueError, OverflowError):
        raise InvalidInput(f"{option} {text!r} is not a size such as 500M or 20G") from None
    if size <= 0:
        raise InvalidInput(f"{option} {text!r} must be a positive size such as 500M or 20G")
    return size


@cli.command()
@click.argument("run_refs", metavar="[RUN]...", nargs=-1, shell_complete=completes("run"))
@click.option(
    "--output",
    "-o",
    required=True,
    type=FilePath(dir_okay=False),
    help="Bundle file to write (.qexb), or a URL such as s3://bucket/runs.qexb.",
)
@filter_options
@click.option(
    "--no-artifacts",
    is_flag=True,
    help="Leave the rendered artifacts (Bloch pages, ...) out; attachments stay.",
)
@click.option(
    "--no-attachments",
    is_flag=True,
    help="Leave the attachments (counts, circuits, ...) out; rendered artifacts stay.",
)
@click.option("--note", help="A free-text note for the recipient.")
@click.option("--with-report", is_flag=True, help="Add the experiment report of the packed runs.")
@click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An fsspec option when writing to a URL (endpoint_url=..., profile=...).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def pack(
    ctx: click.Context,
    run_refs: tuple[str, ...],
    output: str,
    selection: RunFilter,
    no_artifacts: bool,
    no_attachments: bool,
    note: str | None,
    with_report: bool,
    storage_options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Pack runs into one bundle file to share: by ID, or by the same filters as 'runs'.
    The bundle may go to a URL (s3://bucket/prefix/runs.qexb; pip install
    'qex-archive[remote]').

    The density matrices always go in. --no-artifacts leaves out the rendered pages (the
    recipient can make them again with 'render'), --no-attachments the objects attached
    at record time; give both to pack the density matrices alone.

    Example:

        qex-archive pack -o ghz.qexb -e ghz_depolarizing --note "for Ada"
    """
    from ..bundle import pack_bundle
    from ..bundle.records import ArtifactKinds, known_payload_size, select_run_ids
    from ..remote.transfer import is_url, local_path, parse_storage_options
    from ..store.paths import refuse_archive_output

    archive = open_from(ctx)
    if not is_url(output):
        refuse_archive_output(archive.root, local_path(output), what="the bundle")
    total = 0
    if sys.stderr.isatty():  # sizing the bar costs a selection of its own
        ids = select_run_ids(archive, run_refs, selection)
        kinds = ArtifactKinds(rendered=not no_artifacts, attached=not no_attachments)
        total = known_payload_size(archive, ids, kinds)
    with progress_bar(total, "packing") as bar:
        report = pack_bundle(
            archive,
            output,
            runs=run_refs,
            selection=selection,
            include_artifacts=not no_artifacts,
            include_attachments=not no_attachments,
            note=note,
            with_report=with_report,
            progress=bar.update if bar else None,
            storage_options=parse_storage_options(storage_options),
        )
    if as_json:
        emit_json(
            {
                "path": str(report.path),
                "bundle_id": report.bundle_id,
                "runs": report.runs,
                "files": report.files,
                "payload_bytes": report.payload_bytes,
                "size": report.size,
            }
        )
    else:
        files = f"{counted(report.files, 'file')}, {counted(report.size, 'byte')}"
        say(f"packed {counted(report.runs, 'run')} ({files}) into {report.path}")


@cli.command()
@click.argument("bundle", type=FilePath(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@limit_options
def inspect(bundle: str, as_json: bool, **limits: Any) -> None:
    """Show what a bundle holds, without writing anything (the data files are not hashed;
    'verify' does that).

    Example:

        qex-archive inspect ghz.qexb
    """
    from .._timeutil import iso_local
    from ..bundle import read_bundle

    storage = storage_of(limits)
    contents = read_bundle(
        bundle, build_limits(limits), verify_payload=False, storage_options=storage
    )
    runs = contents.summary
    summary = {
        "bundle_id": contents.bundle_id,
        "created": contents.description["created"],
        "creator": contents.description["creator"],
        "note": contents.description.get("note"),
        "runs": runs.runs,
        "experiments": dict(sorted(runs.experiments.items())),
        "backends": dict(sorted(runs.backends.items())),
        "first": runs.first,
        "last": runs.last,
        "files": len(contents.manifest),
        "payload_bytes": contents.payload_bytes,
        "size": contents.size,
    }
    if as_json:
        emit_json(summary)
        return
    creator = summary["creator"]
    lines = [
        (
            "bundle",
            f"{summary['bundle_id']}  (newest run {summary['created']}; packed "
            f"by {creator['software']} {creator['version']})",
        ),
        ("runs", str(summary["runs"])),
        ("experiments", ", ".join(f"{k} ({v})" for k, v in summary["experiments"].items())),
        ("backends", ", ".join(f"{k} ({v})" for k, v in summary["backends"].items())),
        ("time span", f"{iso_local(summary['first'])} .. {iso_local(summary['last'])}"),
        (
            "files",
            f"{summary['files']} ({summary['payload_bytes']:,} bytes; "
            f"bundle {summary['size']:,} bytes)",
        ),
    ]
    if summary["note"]:
        lines.append(("note", summary["note"]))
    report = contents.description.get("report")
    if report:
        lines.append(("report", f"{report['path']} ({report['size']:,} bytes)"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        say(f"{label.ljust(width)}  {value}")


@cli.command()
@click.argument("bundle", type=FilePath(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@limit_options
@click.pass_context
def verify(ctx: click.Context, /, bundle: str, as_json: bool, **limits: Any) -> None:
    """Check a bundle completely (structure, checksums, schema, every .npy header) without
    writing anything. Exit status 0 only when it is valid.

    Example:

        qex-archive verify from-ada.qexb && qex-archive import from-ada.qexb
    """
    from ..bundle import BundleError, read_bundle

    problems: list[dict[str, Any]] = []
    contents = None
    storage = storage_of(limits)
    try:
        with progress_bar(_local_size(bundle), "verifying") as bar:
            contents = read_bundle(
                bundle,
                build_limits(limits),
                progress=bar.update if bar else None,
                all_problems=True,
                storage_options=storage,
            )
    except BundleError as exc:
        problems = [
            {"code": p.code, "severity": "error", "member": p.member, "message": str(p)}
            for p in exc.problems
        ]
    if as_json:
        emit_json(
            {
                "valid": not problems,
                "bundle_id": contents.bundle_id if contents else None,
                "sha256": contents.sha256 if contents else None,
                "problems": problems,
            }
        )
    elif contents:
        runs = contents.summary.runs
        say(f"valid: bundle {contents.bundle_id}, {counted(runs, 'run')}, sha256 {contents.sha256}")
    else:
        for problem in problems:
            say(problem["message"], err=True)
    if problems:
        ctx.exit(1)


@cli.command(name="import")
@click.argument("bundle", type=FilePath(dir_okay=False))
@filter_options
@click.option(
    "--on-conflict",
    type=click.Choice(["error", "skip"]),
    default="error",
    show_default=True,
    help="What to do with run IDs that exist here with other content.",
)
@click.option("--dry-run", "-n", is_flag=True, help="Verify and report, change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@limit_options
@click.pass_context
def import_command(
    ctx: click.Context,
    /,
    bundle: str,
    selection: RunFilter,
    on_conflict: str,
    dry_run: bool,
    as_json: bool,
    **limits: Any,
) -> None:
    """Import a colleague's bundle into this archive, keeping run IDs; verified first,
    all or nothing, and importing it again changes nothing. The filters (the same as
    'runs', meaning the same) import only the bundle's runs they select; the whole bundle
    is verified all the same.

    Example:

        qex-archive import from-ada.qexb --dry-run

        qex-archive import from-ada.qexb -e ghz_depolarizing -t figure=3
    """
    from ..bundle import import_bundle
    from ..opening import open_archive, removed_unless_kept, resolve_data_dir
    from ..store.paths import DB_NAME

    storage = storage_of(limits)
    data_dir = resolve_data_dir(ctx.find_root().obj)
    new = not (data_dir / DB_NAME).exists()
    # a refused import, or a dry run, leaves no archive behind where there was none
    with (
        removed_unless_kept(data_dir, keep=not dry_run) if new else nullcontext(),
        open_archive(data_dir) as archive,
        progress_bar(_local_size(bundle), "importing") as bar,
    ):
        report = import_bundle(
            archive,
            bundle,
            on_conflict=on_conflict,
            dry_run=dry_run,
            limits=build_limits(limits),
            progress=GrowingBar(bar) if bar else None,
            storage_options=storage,
            selection=selection,
        )
    _print_import(report, as_json)


@cli.command()
@click.argument("bundle", type=FilePath(dir_okay=False))
@click.argument("directory", type=FilePath(file_okay=False, path_type=Path))
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@limit_options
@click.pass_context
def unpack(
    ctx: click.Context,
    /,
    bundle: str,
    directory: Path,
    selection: RunFilter,
    as_json: bool,
    **limits: Any,
) -> None:
    """Create a new archive in DIRECTORY from a bundle: all its runs, or those the filters
    (the same as 'runs', meaning the same) select.

    Example:

        qex-archive unpack from-ada.qexb ada_runs && qex-archive -d ada_runs runs

        qex-archive unpack from-ada.qexb figure3 -t figure=3
    """
    from ..opening import resolve_data_dir, unpack_bundle
    from ..store.paths import DB_NAME, refuse_archive_output

    current = resolve_data_dir(ctx.find_root().obj)
    if (current / DB_NAME).exists():  # a new archive never goes inside the one in use
        refuse_archive_output(current, directory, what="unpack's directory")
    storage = storage_of(limits)
    with progress_bar(_local_size(bundle), "unpacking") as bar:
        report = unpack_bundle(
            bundle,
            directory,
            limits=build_limits(limits),
            progress=GrowingBar(bar) if bar else None,
            storage_options=storage,
            selection=selection,
        )
    _print_import(report, as_json)


def _print_import(report: Any, as_json: bool) -> None:
    if as_json:
        emit_json(report.to_dict())
        return
    prefix = "would import" if report.dry_run else "imported"
    say(f"{prefix} {counted(len(report.imported), 'run')} from bundle {report.bundle_id}")
    if report.identical:
        say(f"{counted(len(report.identical), 'run')} already present, unchanged")
    if report.not_selected:
        say(f"left out {counted(len(report.not_selected), 'run')} the filters do not select")
    if report.conflicts:
        shown = ", ".join(report.conflicts)
        say(f"skipped {counted(len(report.conflicts), 'conflicting run')}: {shown}")
    verb = "would add" if report.dry_run else "added"
    if report.tags_added or report.notes_added:
        say(
            f"{verb} {counted(len(report.tags_added), 'tag')} and "
            f"{counted(len(report.notes_added), 'note')} to runs already present"
        )
    for run_id, key, here, theirs in report.tag_conflicts:
        say(f"kept tag {key}={here!r} of {run_id[:8]}; the bundle has {theirs!r}")
    changed = report.imported or report.tags_added or report.notes_added
    if not changed and not report.dry_run:
        say("nothing changed")
