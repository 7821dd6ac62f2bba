"""Commands that mark runs after the fact: tag, note."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import cli, completes, filter_options, has_filters, open_from, say

if TYPE_CHECKING:
    from ..store.query import RunFilter


@cli.command()
@click.argument("items", metavar="[RUN]... KEY=VALUE...", nargs=-1, shell_complete=completes("run"))
@filter_options
@click.option("--remove", "removed", multiple=True, metavar="KEY", help="Remove this tag.")
@click.pass_context
def tag(
    ctx: click.Context, items: tuple[str, ...], selection: RunFilter, removed: tuple[str, ...]
) -> None:
    """Tag runs: KEY=VALUE sets a tag (KEY= a plain mark), --remove KEY takes one off.
    Arguments with '=' are tags, the others run IDs or prefixes. The runs are those named,
    or those the filters select (the same filters as 'runs'); given both, the named runs
    the filters also select. Naming no run and giving no filter is refused.

    Example:

        qex-archive tag 3f2a 9c01 calibration= figure=3 --remove draft

        qex-archive tag -e ghz_depolarizing -p "depolarizing>=0.2" noisy=
    """
    from ..errors import InvalidInput
    from ..store.annotation_tables import tags_by_run

    refs = [item for item in items if "=" not in item]
    tags = dict(item.split("=", 1) for item in items if "=" in item)
    if not refs and not has_filters(selection):
        raise InvalidInput(
            "name at least one run or give filters, e.g. 'qex-archive tag 3f2a calibration=' "
            "or 'qex-archive tag -e ghz calibration='"
        )
    archive = open_from(ctx, create=True)
    run_ids = archive.run_ids(selection, refs=refs)
    if not run_ids:
        raise InvalidInput(
            "no runs match; nothing tagged (check the filters with 'qex-archive runs')"
        )
    archive.tag(run_ids, tags, remove=removed)
    shown_tags = tags_by_run(archive.conn, run_ids)
    for run_id in run_ids:
        shown = " ".join(f"{k}={v}" if v else k for k, v in shown_tags[run_id].items())
        say(f"{run_id[:8]}  {shown or '(no tags)'}")


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

    archive = open_from(ctx, create=True)
    run = archive.get(run_ref)
    add_note(archive, run.run_id, text, edit=edit)
    say(f"{'replaced the last note of' if edit else 'noted'} {run.run_id[:8]}")
