"""Renderers: turning a stored run into artifact files such as the Bloch-sphere page."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..run import Run

RenderFunction = Callable[["Run", "npt.NDArray[np.complex128]"], bytes]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_EXTENSION = re.compile(r"^[a-z0-9]{1,10}$")


@dataclass(frozen=True)
class Renderer:
    """Makes one artifact per run: ``artifacts/{run_id}_{name}.{extension}``.

    ``render(run, rho)`` returns the file's bytes; it must not write anything itself.
    """

    name: str
    media_type: str
    extension: str
    render: RenderFunction
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"renderer name {self.name!r} must be lowercase letters, digits and _")
        if not _EXTENSION.match(self.extension):
            raise ValueError(f"renderer extension {self.extension!r} must be short alphanumeric")
        if "/" not in self.media_type:
            raise ValueError(f"renderer media type {self.media_type!r} is not a MIME type")

    def file_name(self, run_id: str) -> str:
        return f"{run_id}_{self.name}.{self.extension}"
