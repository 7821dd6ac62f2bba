"""Commands that look at what runs hold: compare, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import (
    FilePath,
    cli,
    completes,
    emit_json,
    filter_options,
    open_from,
    say,
)

if TYPE_CHECKING:
    from ..store.query import RunFilter


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


@cli.command()
@filter_options
@click.option(
    "--output",
    "-o",
    required=True,
    type=FilePath(dir_okay=False, path_type=Path),
    help="File to write: .csv, .jsonl or .parquet.",
)
@click.option(
    "--format",
    "-f",
    "file_format",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    help="Format (default: from the file's suffix).",
)
@click.option("--sort", metavar="KEY", help="Order of the rows, as for 'runs' (default: newest).")
@click.option("--reverse", "-r", is_flag=True, help="Reverse the order.")
@click.pass_context
def export(
    ctx: click.Context,
    selection: RunFilter,
    output: Path,
    file_format: str | None,
    sort: str | None,
    reverse: bool,
) -> None:
    """Write the selected runs as a table (the columns of Selection.to_pandas(): run_id,
    experiment, backend, time, params.*, purity, entropy, is_valid, trace, dims), streamed.
    Parquet needs pip install 'qex-archive[analysis]'.

    Example:

        qex-archive export -e ghz_depolarizing -o ghz.csv
    """
    from ..export import export_runs

    report = export_runs(
        open_from(ctx), selection, output, format=file_format, sort=sort, reverse=reverse
    )
    say(f"exported {report.runs} runs ({len(report.columns)} columns) to {report.path}")


@cli.command()
@filter_options
@click.option(
    "--output",
    "-o",
    type=FilePath(path_type=Path),
    help="A .html file for one page of the whole selection, or a directory for a page per "
    "experiment (default: reports/ in the archive).",
)
@click.option(
    "--x", "x_param", metavar="PARAM", help="The param along x (default: the one that varies)."
)
@click.option("--by", metavar="PARAM", help="Group the points by this param, with a legend.")
@click.option(
    "--ref", metavar="RUN", help="Reference run for the fidelity plot (default: the first)."
)
@click.option("--open", "open_page", is_flag=True, help="Open the (first) page in the browser.")
@click.pass_context
def report(
    ctx: click.Context,
    selection: RunFilter,
    output: Path | None,
    x_param: str | None,
    by: str | None,
    ref: str | None,
    open_page: bool,
) -> None:
    """Write a self-contained report page per experiment (or one for the selection): which
    params vary, purity, entropy and fidelity to a reference run plotted against a param,
    and a table of the runs linking to their Bloch pages. No scripts, no network.

    Example:

        qex-archive report -e rabi_sweep --x theta_rad --open
    """
    from ..views.report import write_reports

    archive = open_from(ctx)
    runs = archive.select(selection)
    reference = archive.get(ref) if ref else None
    one_page = output is not None and output.suffix.lower() in (".html", ".htm")
    target = output if output is not None else archive.root / "reports"
    written = write_reports(runs, target, one_page=one_page, x=x_param, by=by, ref=reference)
    for path in written:
        say(f"wrote {path}")
    if open_page and written:
        import webbrowser

        webbrowser.open(written[0].resolve().as_uri())
