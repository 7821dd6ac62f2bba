"""Renderers: turning a stored run into artifact files such as the Bloch-sphere page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

# an artifact's name and extension follow the same rule as an attachment's: both are files
# artifacts/{run_id}_{name}.{extension} of the run
from ..recording.attachments import EXTENSION, NAME
from ..store.paths import artifact_name

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..run import Run

RenderFunction = Callable[["Run", "npt.NDArray[np.complex128]"], bytes]


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
        if not NAME.match(self.name):
            raise ValueError(f"renderer name {self.name!r} must be lowercase letters, digits and _")
        if not EXTENSION.match(self.extension):
            raise ValueError(f"renderer extension {self.extension!r} must be short alphanumeric")
        if "/" not in self.media_type:
            raise ValueError(f"renderer media type {self.media_type!r} is not a MIME type")

    def file_name(self, run_id: str) -> str:
        return artifact_name(run_id, self.name, self.extension)
