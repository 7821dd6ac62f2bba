"""The ``qex-archive`` command: a thin layer that parses options, calls the library and prints.

Only ``click`` is imported at start-up; each command imports what it needs, so ``--help``
and ``runs`` never pay for numpy.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from .errors import InvalidInput, QexError

if TYPE_CHECKING:
    from .archive import Archive
    from .integrity import Finding
    from .query import RunFilter
    from .run import Run

F = TypeVar("F", bound=Callable[..., Any])


class QexGroup(click.Group):
    """Turns library errors into one-line messages, and adds plugin commands on demand."""

    _plugin_commands_loaded = False

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except QexError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            sys.stderr.close()  # output piped into `head`: stop quietly
            sys.exit(0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands(quiet=True)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not self._plugin_commands_loaded:
            self._load_plugin_commands(quiet=False)
            command = super().get_command(ctx, cmd_name)
        return command

    def _load_plugin_commands(self, *, quiet: bool) -> None:
        """Ask third-party plugins for commands; built-ins have none, so without installed
        plugins this costs one scan of the installed distributions and no imports."""
        if self._plugin_commands_loaded:
            return
        self._plugin_commands_loaded = True
        from .plugins import make_plugin_manager, selected_entry_points

        if not selected_entry_points():
            return
        try:
            # built-ins add no commands: leave them (and their imports) out
            make_plugin_manager(load_builtins=False).hook.qex_register_commands(cli=self)
        except QexError as exc:
            if not quiet:
                raise click.ClickException(str(exc)) from None
            click.echo(f"warning: {exc}", err=True)


def _show_warning(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(cls=QexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="QEX_DATA",
    help="Archive directory (default: $QEX_DATA, else ./qex_data).",
)
@click.version_option(__version__, prog_name="qex-archive")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """Keep, find and share quantum experiment runs.

    Each run (experiment, params, backend, time, density matrix, metadata) lives in
    a SQLite database plus .npy files under one directory.

    Example:

        qex-archive demo && qex-archive runs --experiment ghz_depolarizing
    """
    ctx.obj = data_dir


def open_from(ctx: click.Context, *, create: bool = False) -> Archive:
    from .archive import open_archive

    archive = open_archive(ctx.find_root().obj, create=create)
    ctx.call_on_close(archive.close)
    return archive


def output_options(command: F) -> F:
    """``--table`` (default) / ``--json`` / ``--jsonl``, shared by every listing command."""
    for flag, value, text in reversed(
        [
            ("--table", "table", "Readable table (default)."),
            ("--json", "json", "One JSON document."),
            ("--jsonl", "jsonl", "One JSON object per line."),
        ]
    ):
        command = click.option(
            flag, "output", flag_value=value, default=value == "table", help=text
        )(command)
    return command


def filter_options(command: F) -> F:
    """The run selection used by ``runs`` (and later ``pack``)."""
    options = [
        click.option("--experiment", "-e", help="Experiment name."),
        click.option("--backend", "-b", help="Backend name."),
        click.option(
            "--since", help="Not before: ISO time (2026-11-26T14:00), Unix time or age (3d, 12h)."
        ),
        click.option("--until", help="Not after: same forms as --since."),
        click.option(
            "--param",
            "-p",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="Parameter condition, repeatable: shots=1024, theta>=0.1, name!=ghz.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_filter(
    experiment: str | None,
    backend: str | None,
    since: str | None,
    until: str | None,
    params: Iterable[str],
) -> RunFilter:
    from .query import RunFilter, parse_condition

    base = RunFilter.build(experiment=experiment, backend=backend, since=since, until=until)
    conditions = tuple(parse_condition(text) for text in params)
    return RunFilter(base.experiment, base.backend, base.since, base.until, conditions)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create an empty archive (or check that one exists).

    Example:

        qex-archive --data-dir ~/lab/qex_data init
    """
    archive = open_from(ctx, create=True)
    total = archive.count()
    click.echo(f"Archive ready at {archive.root} ({total} run{'s' * (total != 1)})")


@cli.command()
@click.argument("state_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--experiment", "-e", required=True, help="Experiment name.")
@click.option("--backend", "-b", required=True, help="Backend name.")
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
    import numpy as np

    from .jsonvalues import parse_loose

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
        try:
            metadata = json.loads(metadata_json)
        except ValueError as exc:
            raise InvalidInput(f"--metadata is not valid JSON ({exc})") from None
    dim_list = None
    if dims is not None:
        try:
            dim_list = [int(part) for part in dims.split(",")]
        except ValueError:
            raise InvalidInput(
                f"--dims {dims!r} is not a comma-separated list of integers"
            ) from None
    try:
        state = np.load(state_file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInput(f"cannot read {state_file} as a .npy array ({exc})") from None
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
        click.echo(run.run_id)
    if not run.validation.get("is_valid", True):
        findings = "; ".join(run.validation["findings"])
        click.echo(f"warning: stored a non-physical state: {findings}", err=True)


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
@output_options
@click.pass_context
def runs_command(
    ctx: click.Context,
    experiment: str | None,
    backend: str | None,
    since: str | None,
    until: str | None,
    params: tuple[str, ...],
    limit: int,
    offset: int,
    show_all: bool,
    oldest_first: bool,
    output: str,
) -> None:
    """List runs, newest first, filtered by experiment, backend, time and parameters.

    Example:

        qex-archive runs -e ghz_depolarizing -p n_qubits=3 -p "depolarizing<=0.1"
    """
    selection = build_filter(experiment, backend, since, until, params)
    archive = open_from(ctx)
    selected = archive.select(
        selection, limit=None if show_all else limit, offset=offset, newest_first=not oldest_first
    )
    if output == "json":
        emit_json([run.to_dict() for run in selected])
    elif output == "jsonl":
        for run in selected:
            click.echo(json.dumps(run.to_dict(), sort_keys=True, ensure_ascii=False))
    else:
        from .formatting import runs_table

        click.echo(runs_table(selected))
        total = archive.count(selection)
        if total > offset + len(selected) or offset:
            click.echo(
                f"showing {len(selected)} of {total} matching runs; use --limit/--offset or --all",
                err=True,
            )


@cli.command()
@click.argument("run_ref", metavar="RUN")
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
        from .formatting import run_details

        click.echo(run_details(run))


@cli.command()
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def rm(ctx: click.Context, run_refs: tuple[str, ...], yes: bool) -> None:
    """Delete runs with their density matrices and artifacts.

    Example:

        qex-archive rm 3f2a 91bc --yes
    """
    from .formatting import run_line

    archive = open_from(ctx)
    targets: dict[str, Run] = {}
    for ref in run_refs:
        run = archive.get(ref)
        targets[run.run_id] = run
    if not yes:
        listing = "\n".join("  " + run_line(run) for run in targets.values())
        click.confirm(f"Delete {len(targets)} run(s)?\n{listing}\n", abort=True, err=True)
    with archive.batch():
        for run_id in targets:
            archive.delete(run_id)
    for run_id in targets:
        click.echo(f"deleted {run_id}")


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
    from .integrity import check_archive

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
            click.echo(str(finding))
        click.echo(_check_summary(archive.count(), findings), err=bool(findings))
    if failing:
        ctx.exit(1)


def _check_summary(total_runs: int, findings: list[Finding]) -> str:
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if not findings:
        return f"ok: {total_runs} runs, all files present and intact"
    return f"{total_runs} runs checked: {errors} error(s), {warnings} warning(s)"


@cli.command()
@click.option("--dry-run", "-n", is_flag=True, help="List what would be removed.")
@click.pass_context
def gc(ctx: click.Context, dry_run: bool) -> None:
    """Remove orphan files that no run refers to (left by interrupted writes).

    Example:

        qex-archive gc --dry-run
    """
    from .integrity import collect_garbage

    removed = collect_garbage(open_from(ctx), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for relative in removed:
        click.echo(f"{verb} {relative}")
    if not removed:
        click.echo("nothing to remove")


@cli.command()
@click.option(
    "--seed", type=int, default=2, show_default=True, help="Random seed for the simulated noise."
)
@click.pass_context
def demo(ctx: click.Context, seed: int) -> None:
    """Fill the archive with a few dozen simulated runs (numpy only) to explore.

    Example:

        qex-archive demo && qex-archive runs
    """
    from .demo import fill_demo_archive

    archive = open_from(ctx, create=True)
    counts = fill_demo_archive(archive, seed=seed)
    summary = ", ".join(f"{name}: {n}" for name, n in counts.items())
    click.echo(f"Recorded {sum(counts.values())} simulated runs in {archive.root} ({summary}).")
    click.echo(
        "Next: qex-archive runs | qex-archive runs -e ghz_depolarizing -p n_qubits=3 "
        "| qex-archive show RUN | qex-archive check"
    )


@cli.command(name="plugins")
@click.option("--all", "include_builtins", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_command(include_builtins: bool, as_json: bool) -> None:
    """List installed plugins: name, version and the hooks they implement.

    Example:

        qex-archive plugins --all --json
    """
    from .plugins import describe_plugins, make_plugin_manager

    infos = describe_plugins(make_plugin_manager(), include_builtins=include_builtins)
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    if not infos:
        click.echo("no plugins installed (built-ins are listed with --all)")
        return
    width = max(len(info.name) for info in infos)
    for info in infos:
        click.echo(f"{info.name.ljust(width)}  {info.version:<10}  {', '.join(info.hooks)}")


@cli.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--renderer", "-r", "renderers", multiple=True, help="Only this renderer (repeatable)."
)
@click.pass_context
def render(ctx: click.Context, run_ref: str, renderers: tuple[str, ...]) -> None:
    """Make a run's artifacts again, e.g. after installing a renderer plugin.

    Example:

        qex-archive render 3f2a --renderer bloch
    """
    artifacts = open_from(ctx).render(run_ref, list(renderers) or None)
    for artifact in artifacts:
        click.echo(f"{artifact.name}: {artifact.path}")


@cli.command(name="open")
@click.argument("run_ref", metavar="RUN")
@click.argument("artifact_name", metavar="[ARTIFACT]", required=False)
@click.option("--print-path", is_flag=True, help="Print the file's path instead of opening it.")
@click.pass_context
def open_command(
    ctx: click.Context, run_ref: str, artifact_name: str | None, print_path: bool
) -> None:
    """Open a run's artifact (default: the first, usually the Bloch spheres) in the browser.

    Prints the path when no browser is available.

    Example:

        qex-archive open 3f2a bloch
    """
    run = open_from(ctx).get(run_ref)
    artifacts = run.artifacts
    short = run.run_id[:8]
    if not artifacts:
        raise InvalidInput(
            f"run {short} has no artifacts; make them with 'qex-archive render {short}'"
        )
    if artifact_name is None:
        artifact = artifacts[0]
    else:
        matching = [a for a in artifacts if a.name == artifact_name]
        if not matching:
            names = ", ".join(a.name for a in artifacts)
            raise InvalidInput(
                f"run {run.run_id[:8]} has no artifact {artifact_name!r}; it has {names}"
            )
        artifact = matching[0]
    if not artifact.path.is_file():
        raise InvalidInput(f"{artifact.relative_path} is missing; run 'qex-archive check'")
    if print_path:
        click.echo(artifact.path)
        return
    import webbrowser

    if not webbrowser.open(artifact.path.resolve().as_uri()):
        click.echo(artifact.path)


def limit_options(command: F) -> F:
    """Caps on what a bundle may hold, for large legitimate bundles."""
    options = [
        click.option(
            "--max-members", type=click.IntRange(min=1), help="Most ZIP members (default 100,000)."
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
        click.option(
            "--max-json-size", metavar="BYTES", help="Largest JSON member (default 256M)."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def build_limits(options: dict[str, Any]) -> Any:
    from .bundle import Limits

    values: dict[str, Any] = {}
    for key in ("max_members", "max_total_size", "max_file_size", "max_ratio", "max_json_size"):
        value = options.pop(key, None)
        if value is not None:
            values[key] = _byte_size(value, key) if key.endswith("size") else value
    return Limits(**values)


def _byte_size(text: str, key: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    number, unit = text.strip().upper().rstrip("B"), ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    try:
        return int(float(number) * units[unit])
    except ValueError:
        option = "--" + key.replace("_", "-")
        raise InvalidInput(f"{option} {text!r} is not a size such as 500M or 20G") from None


def progress_bar(total: int, label: str) -> Any:
    """A bar on stderr when it is a terminal; otherwise nothing at all."""
    from contextlib import nullcontext

    if not sys.stderr.isatty() or total <= 0:
        return nullcontext(None)
    return click.progressbar(length=total, label=label, file=sys.stderr)


@cli.command()
@click.argument("run_refs", metavar="[RUN]...", nargs=-1)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bundle file to write (.qexb).",
)
@filter_options
@click.option("--no-artifacts", is_flag=True, help="Leave the artifacts (Bloch pages, ...) out.")
@click.option("--note", help="A free-text note for the recipient.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def pack(
    ctx: click.Context,
    run_refs: tuple[str, ...],
    output: Path,
    experiment: str | None,
    backend: str | None,
    since: str | None,
    until: str | None,
    params: tuple[str, ...],
    no_artifacts: bool,
    note: str | None,
    as_json: bool,
) -> None:
    """Pack runs into one bundle file to share: by ID, or by the same filters as 'runs'.

    Example:

        qex-archive pack -o ghz.qexb -e ghz_depolarizing --note "for Ada"
    """
    from .bundle import pack_bundle
    from .bundle.writer import select_runs

    archive = open_from(ctx)
    selection = build_filter(experiment, backend, since, until, params)
    total = 0
    if sys.stderr.isatty():  # sizing the bar costs a selection of its own
        for run in select_runs(archive, run_refs, selection):
            paths = [run.rho_path] + ([] if no_artifacts else [a.path for a in run.artifacts])
            total += sum(path.stat().st_size for path in paths)
    with progress_bar(total, "packing") as bar:
        report = pack_bundle(
            archive,
            output,
            runs=run_refs,
            selection=selection,
            include_artifacts=not no_artifacts,
            note=note,
            progress=bar.update if bar else None,
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
        files = f"{report.files} files, {report.size:,} bytes"
        click.echo(f"packed {report.runs} runs ({files}) into {report.path}")


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@limit_options
def inspect(bundle: Path, as_json: bool, **limits: Any) -> None:
    """Show what a bundle holds, without writing anything (the data files are not hashed;
    'verify' does that).

    Example:

        qex-archive inspect ghz.qexb
    """
    from .bundle import read_bundle
    from .timeutil import iso_local

    contents = read_bundle(bundle, build_limits(limits), verify_payload=False)
    runs = contents.runs
    summary = {
        "bundle_id": contents.bundle_id,
        "created": contents.description["created"],
        "creator": contents.description["creator"],
        "note": contents.description.get("note"),
        "runs": len(runs),
        "experiments": dict(sorted(_count(run["experiment_name"] for run in runs).items())),
        "backends": dict(sorted(_count(run["backend_name"] for run in runs).items())),
        "first": min(run["timestamp"] for run in runs),
        "last": max(run["timestamp"] for run in runs),
        "files": len(contents.manifest),
        "payload_bytes": sum(contents.member_sizes[name] for name in contents.manifest),
        "size": contents.size,
    }
    if as_json:
        emit_json(summary)
        return
    creator = summary["creator"]
    lines = [
        (
            "bundle",
            f"{summary['bundle_id']}  (created {summary['created']} "
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
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"{label.ljust(width)}  {value}")


def _count(values: Iterable[str]) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(values))


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@limit_options
@click.pass_context
def verify(ctx: click.Context, /, bundle: Path, as_json: bool, **limits: Any) -> None:
    """Check a bundle completely (structure, checksums, schema, every .npy header) without
    writing anything. Exit status 0 only when it is valid.

    Example:

        qex-archive verify from-ada.qexb && qex-archive import from-ada.qexb
    """
    from .bundle import BundleError, read_bundle

    problems = []
    contents = None
    try:
        with progress_bar(bundle.stat().st_size if bundle.is_file() else 0, "verifying") as bar:
            contents = read_bundle(
                bundle, build_limits(limits), progress=bar.update if bar else None
            )
    except BundleError as exc:
        problems.append(
            {"code": exc.code, "severity": "error", "member": exc.member, "message": str(exc)}
        )
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
        runs = len(contents.runs)
        click.echo(f"valid: bundle {contents.bundle_id}, {runs} runs, sha256 {contents.sha256}")
    else:
        click.echo(problems[0]["message"], err=True)
    if problems:
        ctx.exit(1)


@cli.command(name="import")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
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
    bundle: Path,
    on_conflict: str,
    dry_run: bool,
    as_json: bool,
    **limits: Any,
) -> None:
    """Import a colleague's bundle into this archive, keeping run IDs; verified first,
    all or nothing, and importing it again changes nothing.

    Example:

        qex-archive import from-ada.qexb --dry-run
    """
    from .bundle import import_bundle

    archive = open_from(ctx, create=True)
    with progress_bar(bundle.stat().st_size if bundle.is_file() else 0, "importing") as bar:
        report = import_bundle(
            archive,
            bundle,
            on_conflict=on_conflict,
            dry_run=dry_run,
            limits=build_limits(limits),
            progress=bar.update if bar else None,
        )
    _print_import(report, as_json)


@cli.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@limit_options
def unpack(bundle: Path, directory: Path, as_json: bool, **limits: Any) -> None:
    """Create a new archive in DIRECTORY from a bundle.

    Example:

        qex-archive unpack from-ada.qexb ada_runs && qex-archive -d ada_runs runs
    """
    from .bundle import unpack_bundle

    with progress_bar(bundle.stat().st_size if bundle.is_file() else 0, "unpacking") as bar:
        report = unpack_bundle(
            bundle, directory, limits=build_limits(limits), progress=bar.update if bar else None
        )
    _print_import(report, as_json)


def _print_import(report: Any, as_json: bool) -> None:
    if as_json:
        emit_json(report.to_dict())
        return
    prefix = "would import" if report.dry_run else "imported"
    click.echo(f"{prefix} {len(report.imported)} runs from bundle {report.bundle_id}")
    if report.identical:
        click.echo(f"{len(report.identical)} runs already present, unchanged")
    if report.conflicts:
        click.echo(
            f"skipped {len(report.conflicts)} conflicting runs: {', '.join(report.conflicts)}"
        )
    if not report.imported and not report.dry_run:
        click.echo("nothing changed")


def main() -> None:
    cli(prog_name="qex-archive")
