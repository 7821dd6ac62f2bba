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
    from qex_archive.recording.attachments import Attachment
    from qex_archive.recording.states import ArchivedState
    from qex_archive.run import Run

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

    from qex_archive.recording.states import ArchivedState

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


@hookimpl
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    """A tape (``QuantumScript``) as OpenQASM 2 where PennyLane can write it, and always its
    operations and measurements as JSON (``<name>_ops``), which every tape has."""
    if not _is_pennylane(obj):
        return None
    import json

    import pennylane as qml

    from qex_archive.recording.attachments import Attachment

    if not isinstance(obj, qml.tape.QuantumScript):
        return None
    described = {
        "wires": [str(w) for w in obj.wires],
        "operations": [
            {"name": op.name, "wires": [str(w) for w in op.wires], "parameters": _plain_list(op)}
            for op in obj.operations
        ],
        "measurements": [str(m) for m in obj.measurements],
    }
    files = [
        Attachment(
            json.dumps(described, indent=1).encode() + b"\n", "application/json", "json", "_ops"
        )
    ]
    try:
        qasm = qml.to_openqasm(obj)
    except Exception:  # an operation OpenQASM 2 has no name for: the JSON keeps the tape
        return files
    return [Attachment(qasm.encode(), "text/x-openqasm", "qasm"), *files]


def _plain_list(op: Any) -> list[Any]:
    values = []
    for parameter in op.parameters:
        try:
            values.append(float(parameter))
        except (TypeError, ValueError):
            values.append(str(parameter))
    return values


def load_tape(run: Run, name: str = "circuit") -> Any:
    """The attached tape's operations, rebuilt from ``<name>_ops`` (the OpenQASM file is for
    people and other tools; reading it back needs the pennylane-qiskit plugin)."""
    import json

    import pennylane as qml

    described = json.loads(run.attachment(f"{name}_ops").read())

    def wire(text: str) -> Any:
        return int(text) if text.lstrip("-").isdigit() else text

    operations = [
        getattr(qml, op["name"])(*op["parameters"], wires=[wire(w) for w in op["wires"]])
        for op in described["operations"]
    ]
    return qml.tape.QuantumScript(operations)
