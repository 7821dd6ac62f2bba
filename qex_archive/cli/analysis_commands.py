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
    counted,
    emit_json,
    filter_options,
    has_filters,
    open_from,
    say,
)

if TYPE_CHECKING:
    from ..run import Run
    from ..store.query import RunFilter


@cli.command()
@click.argument("run_refs", metavar="[RUN]...", nargs=-1, shell_complete=completes("run"))
@filter_options
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def compare(
    ctx: click.Context, run_refs: tuple[str, ...], selection: RunFilter, as_json: bool
) -> None:
    """Compare runs side by side: the parameters that differ (the same ones folded into one
    line), validation, pairwise fidelity and trace distance, and each qubit's Bloch vector.
    The runs are those named (in that order), or those the filters select (the same filters
    as 'runs', oldest first); given both, the named runs the filters also select.

    Example:

        qex-archive compare 3f2a 9c01 b7e4

        qex-archive compare -e ghz_depolarizing -p n_qubits=3
    """
    from ..compare import compare_runs, comparison_text
    from ..errors import InvalidInput

    if len(run_refs) < 2 and not has_filters(selection):
        raise InvalidInput(
            "compare needs at least two runs, e.g. 'qex-archive compare 3f2a 9c01' "
            "or 'qex-archive compare -e ghz'"
        )
    archive = open_from(ctx)
    runs: dict[str, Run] = {}
    if run_refs:
        chosen = set(archive.run_ids(selection, refs=run_refs))
        for ref in run_refs:
            run = archive.get(ref)
            if run.run_id in chosen:
                runs[run.run_id] = run
    else:
        runs = {run.run_id: run for run in archive.select(selection, newest_first=False)}
    if len(runs) < 2:
        raise InvalidInput(
            f"compare needs at least two runs; {len(runs)} selected "
            "(check the filters with 'qex-archive runs')"
        )
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
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="metadata.PATH",
    help="Also a column of the runs' metadata at this dotted path (repeatable), e.g. "
    "metadata.fit.chi2; tags.KEY for a tag column even when no run has that tag.",
)
@click.option("--with-notes", is_flag=True, help="Also the notes' text (column notes.text).")
@click.pass_context
def export(
    ctx: click.Context,
    selection: RunFilter,
    output: Path,
    file_format: str | None,
    sort: str | None,
    reverse: bool,
    columns: tuple[str, ...],
    with_notes: bool,
) -> None:
    """Write the selected runs as a table (the columns of Selection.to_pandas(): run_id,
    experiment, backend, time, params.*, purity, entropy, is_valid, trace, dims), streamed.
    Parquet needs pip install 'qex-archive[analysis]'.

    Example:

        qex-archive export -e ghz_depolarizing -o ghz.csv
    """
    from ..export import export_runs

    report = export_runs(
        open_from(ctx),
        selection,
        output,
        format=file_format,
        sort=sort,
        reverse=reverse,
        columns=columns,
        with_notes=with_notes,
    )
    shown = f"{counted(report.runs, 'run')} ({counted(len(report.columns), 'column')})"
    say(f"exported {shown} to {report.path}")


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
@click.option(
    "--by",
    metavar="PARAM",
    help="Group the points by this param, with a legend (default: the other param that "
    "varies, if it has at most 8 values).",
)
@click.option(
    "--ref", metavar="RUN", help="Reference run for the fidelity plot (default: the first)."
)
@click.option(
    "--ref-state",
    type=FilePath(dir_okay=False, path_type=Path),
    metavar="STATE.npy",
    help="A target state (.npy: a state vector or a density matrix) for the fidelity plot, "
    "instead of a reference run.",
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
    ref_state: Path | None,
    open_page: bool,
) -> None:
    """Write a self-contained report page per experiment (or one for the selection): which
    params vary, purity, entropy and fidelity to a reference run plotted against a param,
    and a table of the runs linking to their Bloch pages. No scripts, no network.

    Example:

        qex-archive report -e rabi_sweep --x theta_rad --open

        qex-archive report -e bell --ref-state target.npy
    """
    from ..views.report import write_reports

    archive = open_from(ctx)
    runs = archive.select(selection)
    reference = archive.get(ref) if ref else None
    one_page = output is not None and output.suffix.lower() in (".html", ".htm")
    target = output if output is not None else archive.root / "reports"
    written = write_reports(
        runs, target, one_page=one_page, x=x_param, by=by, ref=reference, ref_state=ref_state
    )
    for path in written:
        say(f"wrote {path}")
    if open_page and written:
        import webbrowser

        webbrowser.open(written[0].resolve().as_uri())
