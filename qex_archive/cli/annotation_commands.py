"""Commands that mark runs after the fact: tag, note."""

from __future__ import annotations

import click

from . import cli, completes, open_from, say


@cli.command()
@click.argument("items", metavar="RUN... [KEY=VALUE]...", nargs=-1, shell_complete=completes("run"))
@click.option("--remove", "removed", multiple=True, metavar="KEY", help="Remove this tag.")
@click.pass_context
def tag(ctx: click.Context, items: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Tag runs: KEY=VALUE sets a tag (KEY= a plain mark), --remove KEY takes one off.
    Arguments with '=' are tags, the others run IDs or prefixes.

    Example:

        qex-archive tag 3f2a 9c01 calibration= figure=3 --remove draft
    """
    from ..errors import InvalidInput
    from ..store.annotations import tag_runs

    refs = [item for item in items if "=" not in item]
    tags = dict(item.split("=", 1) for item in items if "=" in item)
    if not refs:
        raise InvalidInput("name at least one run, e.g. 'qex-archive tag 3f2a calibration='")
    archive = open_from(ctx)
    runs = [archive.get(ref) for ref in refs]
    tag_runs(archive, [run.run_id for run in runs], tags, removed)
    for run in runs:
        shown = " ".join(f"{k}={v}" if v else k for k, v in run.tags.items()) or "(no tags)"
        say(f"{run.run_id[:8]}  {shown}")


@cli.command()
@click.argument("run_ref", metavar="RUN", shell_complete=completes("run"))
@click.argument("text")
@click.option("--edit", is_flag=True, help="Replace the run's last note instead of adding one.")
@click.pass_context
def note(ctx: click.Context, run_ref: str, text: str, edit: bool) -> None:
    """Add a dated note to a run ('show' lists them), or replace the last with --edit.

    Example:

        qex-archive note 3f2a "fridge warmed up during this run; do not use"
    """
    from ..store.annotations import add_note

    archive = open_from(ctx)
    run = archive.get(run_ref)
    add_note(archive, run.run_id, text, edit=edit)
    say(f"{'replaced the last note of' if edit else 'noted'} {run.run_id[:8]}")
