"""The ``qex-archive`` command: a thin layer that parses options, calls the library and prints.

This module holds the command group and what its commands share; the commands live in
``archive_commands`` (runs), ``annotation_commands`` (tags, notes), ``analysis_commands``
(compare, export, report), ``plugin_commands``, ``bundle_commands`` (exchange) and
``remote_commands``.

Only ``click`` is imported at start-up. The module of a command is imported when the command
is asked for (``--help`` imports them all), and each command imports what it needs, so ``runs``
never pays for numpy or for the bundle code.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from ..errors import QexError
from ..views.terminal import visible

if TYPE_CHECKING:
    from ..archive import Archive
    from ..store.query import RunFilter

F = TypeVar("F", bound=Callable[..., Any])


class FilePath(click.Path):
    """A path option or argument, refused in one line when no file system could hold it
    (a NUL character, bytes that are not UTF-8)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = str(value)
        if "\x00" in text:
            self.fail(f"{visible(text)!r} contains a NUL character", param, ctx)
        try:
            os.fsencode(text)  # bytes that are not UTF-8 are fine in a name; lone surrogates not
        except UnicodeEncodeError:
            self.fail(f"{visible(text)!r} is not a file name this system can hold", param, ctx)
        return super().convert(value, param, ctx)


# Which module registers each built-in command (on `cli`, when imported).
COMMAND_MODULES = {
    **dict.fromkeys(
        ("init", "record", "runs", "show", "rm", "check", "gc", "demo"), "archive_commands"
    ),
    **dict.fromkeys(("tag", "note"), "annotation_commands"),
    **dict.fromkeys(("compare", "export", "report"), "analysis_commands"),
    **dict.fromkeys(("pack", "inspect", "verify", "import", "unpack"), "bundle_commands"),
    **dict.fromkeys(("plugins", "render", "open"), "plugin_commands"),
    **dict.fromkeys(("remote", "push", "pull"), "remote_commands"),
    "serve": "serve_commands",
}


def load_command_modules(names: Iterable[str] = COMMAND_MODULES) -> None:
    """Import the modules that register these built-in commands (all of them by default)."""
    import importlib

    for module in {COMMAND_MODULES[name] for name in names if name in COMMAND_MODULES}:
        importlib.import_module(f"{__name__}.{module}")


NEW_ARCHIVE = "qex_archive.new_archive"  # ctx.meta: the archive a writing command made


class QexGroup(click.Group):
    """Turns library errors into one-line messages, loads the built-in commands as they are
    asked for, and adds plugin commands on demand."""

    _plugin_commands_loaded = False

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main, but every error message (which may quote what the user typed, or
        what an archive or a bundle holds) is made safe for the terminal first."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            exc.message = visible(exc.message)
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = self._invoke(ctx)
        except BaseException as exc:
            guard = ctx.meta.pop(NEW_ARCHIVE, None)
            if guard is not None:
                if isinstance(exc, click.exceptions.Exit) and exc.exit_code == 0:
                    guard.__exit__(None, None, None)
                else:  # the archive the command made is removed (its connection is closed)
                    guard.__exit__(type(exc), exc, exc.__traceback__)
            raise
        guard = ctx.meta.pop(NEW_ARCHIVE, None)
        if guard is not None:
            guard.__exit__(None, None, None)
        return result

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except click.NoSuchOption as exc:
            refused = unhonoured_option(exc)
            if refused is None:
                raise
            raise click.ClickException(refused) from None
        except QexError as exc:
            raise click.ClickException(str(exc)) from None
        except UnicodeEncodeError as exc:
            # a command-line argument with bytes that are not UTF-8 (Python keeps them as lone
            # surrogates), used as a path or stored as text
            shown = exc.object[max(0, exc.start - 20) : exc.end + 20]
            raise click.ClickException(
                f"{shown!r} holds bytes that are not valid UTF-8; use UTF-8 names and text"
            ) from None
        except BrokenPipeError:
            sys.stderr.close()  # output piped into `head`: stop quietly
            sys.exit(0)
        except OSError as exc:
            # A path the user gave that cannot be read or written: their input, not a bug.
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_command_modules()
        self._load_plugin_commands(quiet=True)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            load_command_modules([cmd_name])
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
        from ..plugins import make_plugin_manager, selected_entry_points

        if not selected_entry_points():
            return
        try:
            # built-ins add no commands: leave them (and their imports) out
            make_plugin_manager(load_builtins=False).hook.qex_register_commands(cli=self)
        except QexError as exc:
            if not quiet:
                raise click.ClickException(str(exc)) from None
            say(f"warning: {exc}", err=True)


def _one_data_dir(given: tuple[Path, ...]) -> Path | None:
    if len(given) > 1:
        shown = ", ".join(str(path) for path in given)
        raise click.UsageError(f"--data-dir given {len(given)} times ({shown}); give it once")
    return given[0] if given else None


def _show_warning(
    message: Warning | str, category: type[Warning], *args: object, **kwargs: object
) -> None:
    say(f"warning: {message}", err=True)


def counted(n: int, noun: str) -> str:
    """``1 run``, ``2 runs``: a count and its noun, in the number the count asks for."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def say(message: object = "", *, err: bool = False) -> None:
    """A line for a person (not for a program: ``--json`` output is printed exactly)."""
    click.echo(visible(message), err=err)


@click.group(cls=QexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    "-d",
    type=FilePath(file_okay=False, path_type=Path),
    multiple=True,  # so that a second one is refused, not silently the one used
    callback=lambda ctx, param, given: _one_data_dir(given),
    help="Archive directory (default: $QEX_DATA, else ./qex_data).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes on stderr.")
@click.version_option(__version__, prog_name="qex-archive")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, quiet: bool) -> None:
    """Keep, find and share quantum experiment runs.

    Each run (experiment, params, backend, time, density matrix, metadata) lives in
    a SQLite database plus .npy files under one directory.

    Example:

        qex-archive demo && qex-archive runs --experiment ghz_depolarizing
    """
    ctx.obj = data_dir
    if not quiet and sys.stderr.isatty():
        from ..remote.transfer import reporting

        ctx.with_resource(reporting(_TransferBars().report))


class _TransferBars:
    """Draws one bar on stderr per upload or download, as :mod:`qex_archive.remote.transfer`
    reports it."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._what = ""

    def report(self, what: str, done: int, total: int) -> None:
        if self._bar is None or self._what != what:
            self._close()
            self._what = what
            self._bar = click.progressbar(length=max(total, 1), label=what, file=sys.stderr)
            self._bar.__enter__()
        self._bar.update(done - self._bar.pos)
        if done >= total:
            self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def note(message: str) -> None:
    """An informational line on stderr, unless --quiet."""
    if not click.get_current_context().find_root().params.get("quiet"):
        say(message, err=True)


def open_from(ctx: click.Context, *, create: bool = False) -> Archive:
    """The archive the command works on. A writing command (``create``) makes it on first use,
    as the seed's layout says; if the command then fails, the new archive goes again, so that
    a refusal leaves nothing behind. A reading command refuses a missing archive."""
    from ..opening import open_archive, removed_unless_kept, resolve_data_dir
    from ..store.paths import DB_NAME

    root = resolve_data_dir(ctx.find_root().obj)
    if create and not (root / DB_NAME).exists() and NEW_ARCHIVE not in ctx.meta:
        guard = removed_unless_kept(root)
        guard.__enter__()
        ctx.meta[NEW_ARCHIVE] = guard  # ended by QexGroup.invoke, once the command is done
    archive = open_archive(root, create=create)
    ctx.call_on_close(archive.close)
    return archive


def completes(kind: str) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Shell completion from the archive (``run``, ``experiment`` or ``backend``), imported
    only when the shell asks."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        from . import completion

        answer: list[str] = getattr(completion, f"complete_{kind}")(ctx, param, incomplete)
        return answer

    return complete


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


# The order and paging of the selection vocabulary: a selecting command without them (the order
# of what pack, pull or tag select means nothing) refuses them in one line, not as a typo.
ORDER_OPTIONS = ("--sort", "--reverse", "--limit", "--offset", "--all", "--oldest-first")


def unhonoured_option(exc: click.NoSuchOption) -> str | None:
    """The one-line refusal of an order option given to a selecting command that has none."""
    command = exc.ctx.command if exc.ctx is not None else None
    selects = getattr(getattr(command, "callback", None), "selects_runs", False)
    if command is None or exc.option_name not in ORDER_OPTIONS or not selects:
        return None
    return (
        f"'{command.name}' cannot honour {exc.option_name}: the order of the runs it selects "
        "means nothing there; it takes the filters -e -b --since --until -p -w -t --valid"
    )


FILTER_PARAMETERS = (
    "experiment",
    "backend",
    "since",
    "until",
    "params",
    "wheres",
    "valid",
    "tag_filters",
)


def filter_options(command: F) -> F:
    """The run selection shared by every command that selects runs (runs, pack, export,
    report, compare, tag, rm, import, push, pull): the options, and the command receives them
    as one ``selection`` (a RunFilter). Apply it below ``@cli.command()``."""

    @functools.wraps(command)
    def with_selection(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in FILTER_PARAMETERS}
        kwargs["selection"] = build_filter(**values)
        return command(*args, **kwargs)

    options = [
        click.option(
            "--experiment", "-e", help="Experiment name.", shell_complete=completes("experiment")
        ),
        click.option("--backend", "-b", help="Backend name.", shell_complete=completes("backend")),
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
            help=(
                "Parameter condition, repeatable: shots=1024, theta>=0.1, name!=ghz, "
                "'shots in [1024, 2048]', 'theta<0.1 | theta>3' (either)."
            ),
        ),
        click.option(
            "--where",
            "-w",
            "wheres",
            multiple=True,
            metavar="PATH=VALUE",
            help=(
                "Condition on the metadata by dotted path, repeatable: 'purity>=0.9', "
                "'state.dims=[2,2]', 'backend.qiskit.num_qubits>=5' (purity, entropy, trace, "
                "dims are short for validation.* and state.dims)."
            ),
        ),
        click.option(
            "--tag",
            "-t",
            "tag_filters",
            multiple=True,
            metavar="KEY[=VALUE]",
            help="Runs with this tag (and value), repeatable: -t calibration -t figure=3.",
        ),
        click.option(
            "--valid/--invalid",
            "valid",
            default=None,
            help="Only physical states, or only those flagged non-physical.",
        ),
    ]
    wrapped: Any = with_selection
    for option in reversed(options):
        wrapped = option(wrapped)
    wrapped.selects_runs = True  # see unhonoured_option
    return wrapped  # type: ignore[no-any-return]


def has_filters(selection: RunFilter) -> bool:
    from ..store.query import RunFilter

    return selection != RunFilter()


def build_filter(
    experiment: str | None,
    backend: str | None,
    since: str | None,
    until: str | None,
    params: Iterable[str],
    wheres: Iterable[str] = (),
    valid: bool | None = None,
    tag_filters: Iterable[str] = (),
) -> RunFilter:
    from ..store.query import filter_from_texts

    return filter_from_texts(experiment, backend, since, until, params, wheres, valid, tag_filters)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def progress_bar(total: int, label: str) -> Any:
    """A bar on stderr when it is a terminal; otherwise nothing at all."""
    from contextlib import nullcontext

    quiet = click.get_current_context().find_root().params.get("quiet")
    if quiet or not sys.stderr.isatty() or total <= 0:
        return nullcontext(None)
    return click.progressbar(length=total, label=label, file=sys.stderr)


class GrowingBar:
    """A progress callback for a bar whose work grows as it goes (an import reads the runs a
    second time): ``extend(n)`` adds ``n`` to its length."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, done: int) -> None:
        self.bar.update(done)

    def extend(self, more: int) -> None:
        self.bar.length += more
        self.bar.finished = self.bar.pos >= self.bar.length  # it may have been full


def main() -> None:
    cli(prog_name="qex-archive")
