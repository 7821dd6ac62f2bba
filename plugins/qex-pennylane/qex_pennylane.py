"""qex-archive plugin for PennyLane.

- What ``qml.density_matrix`` and ``qml.state`` return on ``default.mixed`` and
  ``default.qubit`` is a numpy array (or a PennyLane tensor) in wire order, which is
  big-endian as the archive is; plain arrays need no plugin. :func:`with_wires` attaches the
  wire labels (``with_wires(circuit(), dev)``); PennyLane tensors are converted too.
- Devices are described: name, wires, shots, PennyLane version.

PennyLane is imported only when a PennyLane object is seen.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from qex_archive import hookimpl

if TYPE_CHECKING:
    from qex_archive.run import Run
    from qex_archive.states import ArchivedState

__version__ = "0.1.0"


def _is_pennylane(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] == "pennylane"


class WiredState:
    """A state from a PennyLane device together with the device's wire labels."""

    def __init__(self, data: Any, wires: list[Any]) -> None:
        self.data = data
        self.wires = wires


def with_wires(state: Any, wires_or_device: Any) -> WiredState:
    """Label a ``qml.state()``/``qml.density_matrix()`` result with its wires."""
    wires = getattr(wires_or_device, "wires", wires_or_device)
    return WiredState(state, list(wires if isinstance(wires, Iterable) else [wires]))


@hookimpl
def qex_convert_state(obj: object) -> ArchivedState | None:
    import numpy as np

    from qex_archive.states import ArchivedState

    if isinstance(obj, WiredState):
        return ArchivedState(
            rho=np.asarray(obj.data),
            subsystem_labels=[str(wire) for wire in obj.wires],
            source_ordering="big_endian",
            source_kind="pennylane_state",
        )
    if _is_pennylane(obj) and hasattr(obj, "__array__"):  # pennylane.numpy tensors
        return ArchivedState(rho=np.asarray(obj), source_kind="pennylane_tensor")
    return None


def to_array(run: Run) -> Any:
    """The run's density matrix as PennyLane returns it: a numpy array in wire order."""
    import numpy as np

    return np.array(run.rho)


@hookimpl
def qex_backend_metadata(backend: object, backend_name: str) -> dict[str, Any] | None:
    if "pennylane" not in sys.modules:
        return None
    import pennylane as qml

    if not isinstance(backend, qml.devices.Device) and not _is_pennylane(backend):
        return None
    if not hasattr(backend, "wires"):
        return None

    shots = getattr(backend, "shots", None)
    total = getattr(shots, "total_shots", shots)
    return {
        "name": getattr(backend, "name", type(backend).__name__),
        "wires": [str(wire) for wire in backend.wires],
        "num_wires": len(backend.wires),
        "shots": total if isinstance(total, int) else None,
        "pennylane_version": qml.__version__,
    }
