"""Commands that look at what runs hold: compare."""

from __future__ import annotations

import sys

import click

from . import cli, completes, emit_json, open_from, say


@cli.command()
@click.argument("run_refs", metavar="RUN RUN [RUN]...", nargs=-1, shell_complete=completes("run"))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def compare(ctx: click.Context, run_refs: tuple[str, ...], as_json: bool) -> None:
    """Compare runs side by side: the parameters that differ (the same ones folded into one
    line), validation, pairwise fidelity and trace distance, and each qubit's Bloch vector.

    Example:

        qex-archive compare 3f2a 9c01 b7e4
    """
    from ..compare import compare_runs, comparison_text
    from ..errors import InvalidInput

    if len(run_refs) < 2:
        raise InvalidInput("compare needs at least two runs, e.g. 'qex-archive compare 3f2a 9c01'")
    archive = open_from(ctx)
    runs = {}
    for ref in run_refs:
        run = archive.get(ref)
        runs[run.run_id] = run
    comparison = compare_runs(list(runs.values()))
    if as_json:
        emit_json(comparison.to_dict())
        return
    bold = sys.stdout.isatty()
    say(comparison_text(comparison, (lambda t: click.style(t, bold=True)) if bold else str))
