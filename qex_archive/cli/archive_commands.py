"""Commands on the runs of one archive: record, list, show, delete, check, clean up, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import InvalidInput
from . import (
    FilePath,
    cli,
    completes,
    counted,
    emit_json,
    filter_options,
    has_filters,
    note,
    open_from,
    output_options,
    say,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..archive import Archive
    from ..run import Run
    from ..store.integrity import Finding
    from ..store.query import RunFilter


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create an empty archive (or check that one exists).

    Example:

        qex-archive --data-dir ~/lab/qex_data init
    """
    archive = open_from(ctx, create=True)
    total = archive.count()
    say(f"Archive ready at {archive.root} ({counted(total, 'run')})")


@cli.command()
@click.argument("state_file", type=FilePath(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--experiment",
    "-e",
    required=True,
    help="Experiment name.",
    shell_complete=completes("experiment"),
)
@click.option(
    "--backend", "-b", required=True, help="Backend name.", shell_complete=completes("backend")
)
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is JSON when it parses as JSON (repeatable).",
)
@click.option(
    "--metadata", "-m", "metadata_json", metavar="JSON", help="Extra metadata as a JSON object."
)
@click.option("--dims", metavar="D1,D2,...", help="Subsystem dimensions for qudits, e.g. 3,3.")
@click.option("--timestamp", "when", help="When the run happened (default: now).")
@click.option("--strict", is_flag=True, help="Refuse a non-physical state instead of flagging it.")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded run as JSON.")
@click.pass_context
def record(
    ctx: click.Context,
    state_file: Path,
    experiment: str,
    backend: str,
    params: tuple[str, ...],
    metadata_json: str | None,
    dims: str | None,
    when: str | None,
    strict: bool,
    as_json: bool,
) -> None:
    """Record a run whose density matrix (or state vector) is in a .npy file.

    Example:

        qex-archive record rho.npy -e ghz_fidelity -b aer_simulator -p shots=1024 -p theta=0.3
    """
    from .._jsonvalues import parse_loose, parse_strict
    from ..store.npyfile import load_user_npy

    param_values: dict[str, Any] = {}
    for text in params:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {text!r} is not KEY=VALUE")
        if key.strip() in param_values:
            raise InvalidInput(f"--param {key.strip()!r} is given twice")
        param_values[key.strip()] = parse_loose(value)
    metadata = None
    if metadata_json is not None:
        metadata = parse_strict(metadata_json, "--metadata")
    dim_list = None
    if dims is not None:
        try:
            dim_list = [int(part) for part in dims.split(",")]
        except ValueError:
            raise InvalidInput(
                f"--dims {dims!r} is not a comma-separated list of integers"
            ) from None
    state = load_user_npy(state_file)
    archive = open_from(ctx, create=True)
    run = archive.record(
        experiment,
        params=param_values,
        backend=backend,
        state=state,
        metadata=metadata,
        timestamp=when,
        dims=dim_list,
        strict=strict,
    )
    if as_json:
        emit_json(run.to_dict())
    else:
        say(run.run_id)
    if not run.validation.get("is_valid", True):
        findings = "; ".join(run.validation["findings"])
        say(f"warning: stored a non-physical state: {findings}", err=True)


@cli.command(name="runs")
@filter_options
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="At most this many runs.",
)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many runs first.")
@click.option("--all", "show_all", is_flag=True, help="No limit.")
@click.option("--oldest-first", is_flag=True, help="Oldest runs first (default: newest first).")
@click.option(
    "--sort",
    metavar="KEY",
    help="Sort by time, experiment, backend, purity, entropy or a parameter (ascending).",
)
@click.option("--reverse", "-r", is_flag=True, help="Reverse the order.")
@output_options
@click.pass_context
def runs_command(
    ctx: click.Context,
    selection: RunFilter,
    limit: int,
    offset: int,
    show_all: bool,
    oldest_first: bool,
    sort: str | None,
    reverse: bool,
    output: str,
) -> None:
    """List runs, newest first, filtered by experiment, backend, time, parameters and
    what validation found; or sorted by a key.

    Example:

        qex-archive runs -e ghz_depolarizing -p n_qubits=3 -p "depolarizing<=0.1" --sort purity
    """
    archive = open_from(ctx)
    batches = archive.iter_runs(
        selection,
        limit=None if show_all else limit,
        offset=offset,
        newest_first=not oldest_first,
        sort=sort,
        reverse=reverse,
        batch=RUNS_PER_BATCH,
    )
    if output in ("json", "jsonl"):
        # a batch of runs at a time: a million runs print in the memory of a thousand
        written = emit_runs(archive, batches, output)
        if not written and not offset:
            for hint in archive.unknown_keys(selection):
                note(hint)
        return
    import shutil

    from ..store.annotation_tables import tags_by_run
    from ..views.text import runs_table

    selected = [run for batch in batches for run in batch]
    if not selected and not offset:
        for hint in archive.unknown_keys(selection):
            note(hint)
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    tags = tags_by_run(archive.conn, [run.run_id for run in selected])
    say(runs_table(selected, width, tags))
    total = archive.count(selection)
    if total > offset + len(selected) or offset:
        note(f"showing {len(selected)} of {total} matching runs; use --limit/--offset or --all")


RUNS_PER_BATCH = 1000  # runs read, described and printed at a time by runs --json/--jsonl


def emit_runs(archive: Archive, batches: Iterator[list[Run]], output: str) -> int:
    """Print runs a batch at a time, as one JSON array laid out as :func:`emit_json` lays
    it out (``json``) or one compact line each (``jsonl``); the number printed."""
    written = 0
    for batch in batches:
        archive.prefetch(batch)
        if output == "jsonl":
            texts = [json.dumps(run.to_dict(), sort_keys=True, ensure_ascii=False) for run in batch]
            click.echo("\n".join(texts))
        else:  # json.dumps(runs, indent=2): each element indented by two more spaces
            texts = [
                "  "
                + json.dumps(run.to_dict(), indent=2, sort_keys=True, ensure_ascii=False).replace(
                    "\n", "\n  "
                )
                for run in batch
            ]
            click.echo((",\n" if written else "[\n") + ",\n".join(texts), nl=False)
        written += len(batch)
    if output == "json":
        click.echo("\n]" if written else "[]")
    return written


@cli.command()
@click.argument("run_ref", metavar="RUN", shell_complete=completes("run"))
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.pass_context
def show(ctx: click.Context, run_ref: str, as_json: bool) -> None:
    """Show one run: parameters, state, validation, files. RUN is an ID or unique prefix.

    Example:

        qex-archive show 3f2a
    """
    run = open_from(ctx).get(run_ref)
    if as_json:
        emit_json(run.to_dict())
    else:
        from ..views.text import run_details

        say(run_details(run))


@cli.command()
@click.argument("run_refs", metavar="[RUN]...", nargs=-1, shell_complete=completes("run"))
@filter_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def rm(ctx: click.Context, run_refs: tuple[str, ...], selection: RunFilter, yes: bool) -> None:
    """Delete runs with their density matrices and artifacts: those named (IDs or unique
    prefixes), or those the filters select (the same filters as 'runs'); given both, the
    named runs the filters also select. The runs are listed and you are asked first, unless
    --yes. Naming no run and giving no filter is refused (nothing is ever removed by
    accident).

    Example:

        qex-archive rm 3f2a 91bc --yes

        qex-archive rm -e scratch --until 30d
    """
    from ..views.text import run_line

    if not run_refs and not has_filters(selection):
        raise InvalidInput(
            "name the runs to delete or give filters, e.g. 'qex-archive rm 3f2a' or "
            "'qex-archive rm -e scratch'; rm never removes every run unasked"
        )
    archive = open_from(ctx)
    run_ids = archive.run_ids(selection, refs=run_refs)
    if not run_ids:
        raise InvalidInput(
            "no runs match; nothing deleted (check the filters with 'qex-archive runs')"
        )
    if not yes:
        shown = archive.runs_by_ids(run_ids[:RM_LISTED])
        listing = "\n".join("  " + run_line(run) for run in shown)
        if len(run_ids) > RM_LISTED:
            listing += f"\n  ... and {len(run_ids) - RM_LISTED} more"
        click.confirm(f"Delete {counted(len(run_ids), 'run')}?\n{listing}\n", abort=True, err=True)
    with archive.batch():
        for run_id in run_ids:
            archive.delete(run_id)
    for run_id in run_ids:
        say(f"deleted {run_id}")


RM_LISTED = 200  # runs listed before rm asks; the rest are counted


@cli.command()
@click.option("--no-checksums", is_flag=True, help="Check sizes and headers only, not SHA-256.")
@click.option("--strict", is_flag=True, help="Fail on warnings (e.g. non-physical states) too.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def check(ctx: click.Context, no_checksums: bool, strict: bool, as_json: bool) -> None:
    """Check the archive: every row has its intact file, every file has its row.

    Exit status 1 when an error is found (or a warning, with --strict).

    Example:

        qex-archive check && echo archive intact
    """
    from ..store.integrity import check_archive

    archive = open_from(ctx)
    findings = check_archive(archive, verify_checksums=not no_checksums)
    failing = [f for f in findings if f.severity == "error" or strict]
    if as_json:
        emit_json(
            {
                "ok": not failing,
                "runs": archive.count(),
                "findings": [f.to_dict() for f in findings],
            }
        )
    else:
        for finding in findings:
            say(str(finding))
        say(_check_summary(archive.count(), findings), err=bool(findings))
    if failing:
        ctx.exit(1)


def _check_summary(total_runs: int, findings: list[Finding]) -> str:
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return f"ok: {counted(total_runs, 'run')}, all files present and intact"
    return (
        f"{counted(total_runs, 'run')} checked: {counted(errors, 'error')}, "
        f"{counted(warnings, 'warning')}"
    )


@cli.command()
@click.option("--dry-run", "-n", is_flag=True, help="List what would be removed.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Remove orphan files that no run refers to (left by interrupted writes).

    Example:

        qex-archive gc --dry-run
    """
    from ..store.integrity import collect_garbage

    removed = collect_garbage(open_from(ctx), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for relative in removed:
        say(f"{verb} {relative}")
    if not removed:
        say("nothing to remove")


@cli.command()
@click.option(
    "--seed", type=int, default=2, show_default=True, help="Random seed for the simulated noise."
)
@click.option("--fresh", is_flag=True, help="Replace the demo runs already in the archive.")
@click.pass_context
def demo(ctx: click.Context, seed: int, fresh: bool) -> None:
    """Fill the archive with a few dozen simulated runs (numpy only) to explore. Running it
    again changes nothing; --fresh records the demo runs anew.

    Example:

        qex-archive demo && qex-archive runs
    """
    from ..demo import demo_run_count, fill_demo_archive, remove_demo_runs

    archive = open_from(ctx, create=True)
    present = demo_run_count(archive)
    if present and not fresh:
        say(
            f"The {present} demo runs are already in {archive.root}; nothing changed "
            "('qex-archive demo --fresh' records them anew)."
        )
        return
    with archive.batch():  # the old demo runs go only if the new ones are stored
        removed = remove_demo_runs(archive) if fresh else 0
        counts = fill_demo_archive(archive, seed=seed)
    summary = ", ".join(f"{name}: {n}" for name, n in counts.items())
    replaced = f", replacing {removed}" if removed else ""
    say(f"Recorded {sum(counts.values())} simulated runs in {archive.root} ({summary}){replaced}.")
    say(
        "Next: qex-archive runs | qex-archive runs -e ghz_depolarizing -p n_qubits=3 "
        "| qex-archive show RUN | qex-archive check"
    )
