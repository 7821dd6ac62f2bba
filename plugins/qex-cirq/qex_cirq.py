"""qex-archive plugin for Cirq.

- Results of ``DensityMatrixSimulator.simulate`` and ``Simulator.simulate`` (state vectors)
  become archived states, with the qubits (in the result's ``qubit_map`` order, which is
  Cirq's big-endian order, as the archive's) as labels and qudit shapes kept as ``dims``.
  Arrays from ``cirq.final_density_matrix`` are plain numpy arrays in the same order and
  need no plugin.
- Simulators and devices are described: simulator type, noise model, seed; a device's
  qubits, gate set and gate durations where its metadata has them.

Cirq is imported only when a Cirq object is seen.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from qex_archive import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from qex_archive.recording.attachments import Attachment
    from qex_archive.recording.states import ArchivedState
    from qex_archive.run import Run

__version__ = "0.1.0"


def _is_cirq(obj: object) -> bool:
    """Cirq's own objects, and subclasses of its devices and samplers defined elsewhere;
    never imports Cirq (whoever holds a Cirq object has imported it)."""
    if "cirq" not in sys.modules:
        return False
    import cirq

    return type(obj).__module__.split(".")[0] in ("cirq", "cirq_google") or isinstance(
        obj, (cirq.Device, cirq.Sampler)
    )


@hookimpl
def qex_convert_state(obj: object) -> ArchivedState | None:
    from qex_archive.recording.states import ArchivedState

    if not _is_cirq(obj):
        return None
    qubit_map = getattr(obj, "qubit_map", None)
    if hasattr(obj, "final_density_matrix"):
        data, kind = obj.final_density_matrix, "DensityMatrixTrialResult"
    elif hasattr(obj, "final_state_vector"):
        data, kind = obj.final_state_vector, "StateVectorTrialResult"
    else:
        return None
    qubits = sorted(qubit_map, key=qubit_map.get) if qubit_map else []
    return ArchivedState(
        rho=data,
        dims=[q.dimension for q in qubits] or None,
        subsystem_labels=[str(q) for q in qubits] or None,
        source_ordering="big_endian",
        source_kind=kind,
    )


def to_density_matrix(run: Run) -> npt.NDArray[np.complex128]:
    """The run's density matrix as Cirq uses it: a numpy array in the labels' qubit order."""
    import numpy as np

    return np.array(run.rho)


@hookimpl
def qex_backend_metadata(backend: object, backend_name: str) -> dict[str, Any] | None:
    if not _is_cirq(backend):
        return None
    import cirq

    info: dict[str, Any] = {"type": type(backend).__name__, "cirq_version": cirq.__version__}
    noise = getattr(backend, "noise", None)
    if noise is not None:
        info["noise_model"] = repr(noise)
        info["noiseless"] = noise is cirq.NO_NOISE or repr(noise) == "(no noise)"
    device = backend if isinstance(backend, cirq.Device) else getattr(backend, "device", None)
    metadata = getattr(device, "metadata", None) if device is not None else None
    if metadata is not None:
        info["qubits"] = sorted(str(q) for q in getattr(metadata, "qubit_set", []) or [])
        gateset = getattr(metadata, "gateset", None)
        if gateset is not None:
            info["gateset"] = sorted(str(gate) for gate in gateset.gates)
        durations = getattr(metadata, "gate_durations", None)
        if durations:
            info["gate_durations_ns"] = {
                str(gate): float(d.total_nanos()) for gate, d in durations.items()
            }
    return info


@hookimpl
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    """Circuits, noise models and other Cirq objects as Cirq JSON (``cirq.to_json``);
    measurement results as their histograms in JSON."""
    if "cirq" not in sys.modules:
        return None
    import json

    import cirq

    from qex_archive.recording.attachments import Attachment

    if isinstance(obj, cirq.Result):
        histograms = {
            key: {str(k): int(v) for k, v in sorted(obj.histogram(key=key).items())}
            for key in obj.measurements
        }
        text = json.dumps({"repetitions": obj.repetitions, "histograms": histograms}, indent=1)
        return [Attachment(text.encode() + b"\n", "application/json", "json")]
    if type(obj).__module__.split(".")[0] != "cirq":
        return None
    try:
        text = cirq.to_json(obj)
    except (TypeError, ValueError):
        return None  # not serializable by Cirq: the built-ins or nobody
    return [Attachment(text.encode(), "application/json", "json")]


def load_cirq(run: Run, name: str) -> Any:
    """An attached Cirq object (a circuit, a noise model) from its Cirq JSON."""
    import cirq

    return cirq.read_json(json_text=run.attachment(name).read().decode())
