"""Commands about plugins and the artifacts they render."""

from __future__ import annotations

import os

import click

from ..errors import InvalidInput
from . import (
    cli,
    completes,
    emit_json,
    open_from,
    say,
)


@cli.command(name="plugins")
@click.option("--all", "include_builtins", is_flag=True, help="Include the built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins_command(include_builtins: bool, as_json: bool) -> None:
    """List installed plugins: name, version and the hooks they implement.

    Example:

        qex-archive plugins --all --json
    """
    from ..plugins import describe_plugins, make_plugin_manager

    infos = describe_plugins(make_plugin_manager(), include_builtins=include_builtins)
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    if not infos:
        say(_no_plugins_message())
        return
    width = max(len(info.name) for info in infos)
    for info in infos:
        say(f"{info.name.ljust(width)}  {info.version:<10}  {', '.join(info.hooks)}")


def _no_plugins_message() -> str:
    from ..plugins import LOAD_PLUGINS_ENV, installed_entry_points

    installed = sorted({ep.name for ep in installed_entry_points()})
    switch = os.environ.get(LOAD_PLUGINS_ENV)
    if switch is not None and installed:
        setting = f"{LOAD_PLUGINS_ENV}={switch!r}"
        return (
            f"no plugins loaded: {setting} selects none of the installed ones "
            f"({', '.join(installed)}); unset it to load them all"
        )
    if switch is not None:
        return f"no plugins installed ({LOAD_PLUGINS_ENV} is set to {switch!r}); built-ins: --all"
    return "no plugins installed (built-ins are listed with --all)"


@cli.command()
@click.argument("run_ref", metavar="RUN", shell_complete=completes("run"))
@click.option(
    "--renderer", "-r", "renderers", multiple=True, help="Only this renderer (repeatable)."
)
@click.option(
    "--force", is_flag=True, help="Render even from a .npy that differs from its checksum."
)
@click.pass_context
def render(ctx: click.Context, run_ref: str, renderers: tuple[str, ...], force: bool) -> None:
    """Make a run's artifacts again (after installing a renderer plugin, say). A density
    matrix that no longer matches its recorded checksum is refused unless --force.

    Example:

        qex-archive render 3f2a --renderer bloch
    """
    artifacts = open_from(ctx).render(run_ref, list(renderers) or None, force=force)
    for artifact in artifacts:
        say(f"{artifact.name}: {artifact.path}")


DEFAULT_ARTIFACT = "bloch"


@cli.command(name="open")
@click.argument("run_ref", metavar="RUN", shell_complete=completes("run"))
@click.argument("artifact_name", metavar="[ARTIFACT]", required=False)
@click.option("--print-path", is_flag=True, help="Print the file's path instead of opening it.")
@click.option(
    "--trust",
    is_flag=True,
    help="Open an artifact imported from someone's bundle as it came (it may run scripts).",
)
@click.pass_context
def open_command(
    ctx: click.Context, run_ref: str, artifact_name: str | None, print_path: bool, trust: bool
) -> None:
    """Open a run's artifact in the browser: its Bloch-sphere page, or the one named.

    Prints the path when no browser is available. Artifacts imported from a bundle are
    someone else's content: make a local one with 'render', or pass --trust.

    Example:

        qex-archive open 3f2a          # the Bloch page; 'qex-archive open 3f2a heatmap' for another
    """
    from ..store.paths import stat_data_file
    from ..views.html import may_show

    archive = open_from(ctx)
    run = archive.get(run_ref)
    artifacts = run.artifacts
    short = run.run_id[:8]
    if not artifacts:
        raise InvalidInput(
            f"run {short} has no artifacts; make them with 'qex-archive render {short}'"
        )
    wanted = artifact_name or DEFAULT_ARTIFACT
    matching = [a for a in artifacts if a.name == wanted]
    if not matching and artifact_name is None:
        matching = artifacts[:1]  # no Bloch page (a renderer switched off): the first one
    if not matching:
        names = ", ".join(a.name for a in artifacts)
        raise InvalidInput(
            f"run {short} has no artifact {wanted!r}; it has {names} "
            f"(e.g. 'qex-archive open {short} {artifacts[0].name}')"
        )
    artifact = matching[0]
    if stat_data_file(archive.root, artifact.relative_path) is None:
        raise InvalidInput(f"{artifact.relative_path} is missing; run 'qex-archive check'")
    if print_path:
        say(artifact.path)
        return
    if not may_show(artifact, trust=trust):
        raise InvalidInput(
            f"{artifact.relative_path} came from bundle {artifact.origin} and may contain "
            f"anything; make a local one with 'qex-archive render {short}', or pass --trust"
        )
    import webbrowser

    if not webbrowser.open(artifact.path.resolve().as_uri()):
        say(artifact.path)
