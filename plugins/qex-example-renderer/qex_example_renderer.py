"""An SVG heat map of |rho|, registered as a qex-archive renderer, plus a command to print it.

numpy and qex-archive internals are imported inside functions, so listing commands
(``qex-archive --help``) stays fast with this plugin installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from qex_archive import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from qex_archive.run import Run

__version__ = "0.1.0"
CELL = 24
MAX_CELLS = 64


def heatmap_svg(rho: npt.NDArray[np.complex128], title: str = "") -> bytes:
    """|rho| as a grid of grey-blue cells, darkest at the largest magnitude."""
    import html

    import numpy as np

    magnitudes = np.abs(np.asarray(rho))
    d = magnitudes.shape[0]
    step = max(1, -(-d // MAX_CELLS))  # large matrices: one cell per step x step block
    shown = magnitudes[::step, ::step]
    n = shown.shape[0]
    peak = float(shown.max()) or 1.0
    size = n * CELL
    cells = []
    for i in range(n):
        for j in range(n):
            level = float(shown[i, j]) / peak
            shade = round(255 - 200 * level)
            cells.append(
                f'<rect x="{j * CELL}" y="{i * CELL + 20}" width="{CELL}" height="{CELL}" '
                f'fill="rgb({shade},{shade},255)"><title>|rho[{i * step},{j * step}]| = '
                f"{shown[i, j]:.4g}</title></rect>"
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qex-heatmap" width="{size}" '
        f'height="{size + 20}" viewBox="0 0 {size} {size + 20}">'
        f'<text x="0" y="14" font-family="sans-serif" font-size="12">'
        f"{html.escape(title)} |rho|</text>" + "".join(cells) + "</svg>\n"
    ).encode("utf-8")


def render_heatmap(run: Run, rho: npt.NDArray[np.complex128]) -> bytes:
    return heatmap_svg(rho, title=run.experiment_name)


@hookimpl
def qex_register_renderers(register: Any) -> None:
    from qex_archive.views.rendering import Renderer

    register(
        Renderer(
            name="heatmap",
            media_type="image/svg+xml",
            extension="svg",
            render=render_heatmap,
            description="SVG heat map of |rho|",
        )
    )


@hookimpl
def qex_register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.argument("run_ref", metavar="RUN")
    @click.option(
        "--output", "-o", type=click.Path(dir_okay=False), help="Write here instead of stdout."
    )
    @click.pass_context
    def heatmap(ctx: click.Context, run_ref: str, output: str | None) -> None:
        """Print the |rho| heat map of a run as SVG (from the qex-example-renderer plugin).

        Example:

            qex-archive heatmap 3f2a -o rho.svg
        """
        from qex_archive.cli import open_from

        run = open_from(ctx).get(run_ref)
        svg = heatmap_svg(run.rho, title=run.experiment_name)
        if output:
            with open(output, "wb") as stream:
                stream.write(svg)
            click.echo(output)
        else:
            click.echo(svg.decode("utf-8"), nl=False)
