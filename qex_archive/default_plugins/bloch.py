"""The default artifact: one Bloch sphere per qubit in a self-contained HTML page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..views.rendering import Renderer

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..run import Run


def render_bloch(run: Run, rho: npt.NDArray[np.complex128]) -> bytes:
    from ..views.bloch import bloch_page

    return bloch_page(run, rho)


@hookimpl
def qex_register_renderers(register: Callable[[Renderer], None]) -> None:
    register(
        Renderer(
            name="bloch",
            media_type="text/html",
            extension="html",
            render=render_bloch,
            description="Bloch sphere of each qubit's reduced state, as one offline HTML page",
        )
    )
