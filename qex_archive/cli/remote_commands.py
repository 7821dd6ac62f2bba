"""Commands for sharing through object storage: remote add/list/rm/status, push, pull."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from . import cli, counted, emit_json, filter_options, open_from, say

if TYPE_CHECKING:
    from ..remote.index import Skipped
    from ..store.query import RunFilter


@cli.group()
def remote() -> None:
    """Places in object storage (s3://bucket/prefix, ...) to push bundles to and pull from.

    Example:

        qex-archive remote add lab s3://lab-bucket/qex
    """


@remote.command(name="add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An fsspec option kept with the remote (endpoint_url=...); never a secret.",
)
@click.pass_context
def remote_add(ctx: click.Context, name: str, url: str, storage_options: tuple[str, ...]) -> None:
    """Add a remote.

    Example:

        qex-archive remote add lab s3://lab-bucket/qex --storage-option endpoint_url=https://minio:9000
    """
    from ..remote.sync import add_remote
    from ..remote.transfer import parse_storage_options, shown_url

    add_remote(open_from(ctx, create=True), name, url, parse_storage_options(storage_options))
    say(f"added remote {name}: {shown_url(url) if '://' in url else url}")


@remote.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def remote_list(ctx: click.Context, as_json: bool) -> None:
    """List the remotes.

    Example:

        qex-archive remote list
    """
    from ..remote.sync import remotes

    found = remotes(open_from(ctx))
    if as_json:
        emit_json(found)
        return
    for entry in found:
        say(f"{entry['name']}  {entry['url']}")
    if not found:
        say("no remotes; add one with 'qex-archive remote add NAME URL'")


@remote.command(name="rm")
@click.argument("name")
@click.pass_context
def remote_rm(ctx: click.Context, name: str) -> None:
    """Forget a remote (nothing in it is deleted).

    Example:

        qex-archive remote rm lab
    """
    from ..remote.sync import remove_remote

    remove_remote(open_from(ctx), name)
    say(f"removed remote {name}")


@remote.command(name="status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def remote_status(ctx: click.Context, name: str, as_json: bool) -> None:
    """Runs only here, only there, in both, and run IDs with other content there.

    Example:

        qex-archive remote status lab
    """
    from ..remote.sync import status

    result = status(open_from(ctx), name)
    if as_json:
        emit_json(result.to_dict())
    else:
        for label, ids in result.to_dict().items():
            if label != "skipped":
                say(f"{label.replace('_', ' ')}: {len(ids)}")
    _refuse_skipped(name, result.skipped, "counted")


def _refuse_skipped(name: str, skipped: list[Skipped], done: str) -> None:
    """Each object of the remote that was left out on stderr, then exit status 1."""
    if not skipped:
        return
    for item in skipped:
        say(f"skipped {item}", err=True)
    raise click.ClickException(
        f"{counted(len(skipped), 'object')} of {name} could not be used (named above) and "
        f"{'was' if len(skipped) == 1 else 'were'} left out; the rest were {done}. Ask whoever "
        "pushed them to push again"
    )


@cli.command()
@click.argument("name")
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print what was pushed as JSON.")
@click.pass_context
def push(ctx: click.Context, name: str, selection: RunFilter, as_json: bool) -> None:
    """Pack the runs the filters select (the same filters as 'runs') that the remote lacks
    into one new bundle and upload it with its index (each under a temporary name, then moved
    into place; a failed upload leaves nothing under the final name).

    Example:

        qex-archive push lab -e ghz_depolarizing
    """
    from ..remote.sync import push as push_runs

    pushed = push_runs(open_from(ctx), name, selection)
    if as_json:
        emit_json(pushed)
    elif pushed is None:
        say(f"nothing to push: {name} holds every selected run")
    else:
        say(f"pushed {counted(pushed['runs'], 'run')} to {name} (bundle {pushed['bundle_id']})")


@cli.command()
@click.argument("name")
@filter_options
@click.option(
    "--on-conflict", type=click.Choice(["error", "skip"]), default="error", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the import reports as JSON.")
@click.pass_context
def pull(
    ctx: click.Context, name: str, selection: RunFilter, on_conflict: str, as_json: bool
) -> None:
    """Import the runs the filters select (the same filters as 'runs', every one honoured)
    from the remote's bundles that bring runs this archive lacks. Experiment, backend and time
    are matched against the remote's index before anything is fetched; the rest against the
    runs of each fetched bundle, which is verified whole (and against its index) and imported
    all or nothing. An index object or bundle that cannot be used is named and left out, the
    others are pulled, and the exit status is 1.

    Example:

        qex-archive pull lab -e ghz_depolarizing
    """
    from ..remote.sync import pull as pull_runs

    reports = pull_runs(open_from(ctx, create=True), name, selection, on_conflict)
    if as_json:
        emit_json([report.to_dict() for report in reports])
        _refuse_skipped(name, reports.skipped, "pulled")
        return
    runs = sum(len(report.imported) for report in reports)
    left_out = sum(len(report.not_selected) for report in reports)
    unselected = (
        f" (left out {counted(left_out, 'run')} the filters do not select)" if left_out else ""
    )
    pulled = f"{counted(runs, 'run')} in {counted(len(reports), 'bundle')}"
    say(f"pulled {pulled} from {name}{unselected}")
    _refuse_skipped(name, reports.skipped, "pulled")
