"""qex-archive plugin for Qiskit.

- ``DensityMatrix`` and ``Statevector`` (also what Aer's ``save_density_matrix`` returns)
  become archived states. Qiskit is little-endian (qubit 0 is the rightmost kron factor); the
  archive is big-endian, so the matrix is reordered on the way in and ``source_ordering`` says
  ``qiskit_little_endian``. :func:`to_density_matrix` gives the recorded ``DensityMatrix`` back.
- ``BackendV2`` objects (real devices, fake backends, ``AerSimulator``) are described: name,
  version, qubits, ``dt``, coupling map, operations, per-qubit T1/T2/frequency and
  per-instruction duration/error where known, Aer's method and noise model.

Qiskit is imported only when a Qiskit object is seen, so installing this plugin costs the
command line nothing at start-up.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qex_archive import hookimpl

if TYPE_CHECKING:
    import numpy.typing as npt

    from qex_archive.recording.attachments import Attachment
    from qex_archive.recording.states import ArchivedState
    from qex_archive.run import Run

__version__ = "0.1.0"
SOURCE_ORDERING = "qiskit_little_endian"


def _qiskit_loaded() -> bool:
    """Whoever holds a Qiskit object has imported Qiskit: never import it for nothing."""
    return "qiskit" in sys.modules


def reverse_subsystems(data: npt.NDArray[Any], dims: Sequence[int]) -> npt.NDArray[Any]:
    """Reverse the order of the tensor factors of a state vector or density matrix.

    Qiskit's index puts subsystem 0 last (least significant); the archive's puts it first.
    The same reversal maps either way.
    """
    n = len(dims)
    if data.ndim == 1:
        return data.reshape(list(reversed(dims))).transpose(list(reversed(range(n)))).reshape(-1)
    axes = list(reversed(range(n)))
    tensor = data.reshape(list(reversed(dims)) * 2)
    return tensor.transpose(axes + [n + axis for axis in axes]).reshape(data.shape)


@hookimpl
def qex_convert_state(obj: object) -> ArchivedState | None:
    from qex_archive.recording.states import ArchivedState

    if not _qiskit_loaded():
        return None
    from qiskit.quantum_info import DensityMatrix, Statevector

    if not isinstance(obj, (DensityMatrix, Statevector)):
        return None
    dims = list(obj.dims())  # qubit 0 first
    return ArchivedState(
        rho=reverse_subsystems(obj.data, dims),
        dims=dims,
        subsystem_labels=list(range(len(dims))),
        source_ordering=SOURCE_ORDERING,
        source_kind=type(obj).__name__,
    )


def to_density_matrix(run: Run) -> Any:
    """The run's state as a Qiskit ``DensityMatrix`` (little-endian, as Qiskit expects)."""
    import numpy as np
    from qiskit.quantum_info import DensityMatrix

    dims = run.dims or []
    return DensityMatrix(reverse_subsystems(np.asarray(run.rho), dims), dims=tuple(dims))


@hookimpl
def qex_backend_metadata(backend: object, backend_name: str) -> dict[str, Any] | None:
    if not _qiskit_loaded():
        return None
    import qiskit
    from qiskit.providers import BackendV2

    if not isinstance(backend, BackendV2):
        return None
    failures: list[str] = []

    def _optional(read: Any, what: str) -> Any:
        """A property a backend may not have (simulators and older backends raise
        AttributeError or NotImplementedError: left out quietly); any other failure is
        noted, so the run says why the value is missing."""
        try:
            return read()
        except (AttributeError, NotImplementedError):
            return None
        except Exception as exc:
            failures.append(f"backend.{what} raised {type(exc).__name__}: {exc}"[:300])
            return None

    num_qubits = _optional(lambda: backend.num_qubits, "num_qubits")
    info: dict[str, Any] = {
        "name": backend.name,
        "backend_version": getattr(backend, "backend_version", None) or None,
        "num_qubits": num_qubits,
        "qiskit_version": qiskit.__version__,
    }
    info["dt_s"] = _optional(lambda: backend.dt, "dt")
    coupling = _optional(lambda: backend.coupling_map, "coupling_map")
    info["coupling_map"] = [list(edge) for edge in coupling.get_edges()] if coupling else None
    info["operation_names"] = sorted(
        _optional(lambda: backend.operation_names, "operation_names") or []
    )
    qubits = []
    for index in range(num_qubits or 0):
        properties = _optional(
            lambda index=index: backend.qubit_properties(index), f"qubit_properties({index})"
        )
        if properties is not None:
            qubits.append(
                {
                    "qubit": index,
                    "t1_s": getattr(properties, "t1", None),
                    "t2_s": getattr(properties, "t2", None),
                    "frequency_hz": getattr(properties, "frequency", None),
                }
            )
    info["qubit_properties"] = qubits or None
    info["instructions"] = _instructions(_optional(lambda: backend.target, "target")) or None
    options = getattr(backend, "options", None)
    if type(backend).__module__.startswith("qiskit_aer"):
        import qiskit_aer

        info["simulator_method"] = getattr(options, "method", None)
        info["noise_model"] = getattr(options, "noise_model", None) is not None
        info["qiskit_aer_version"] = qiskit_aer.__version__
    if failures:
        info["qex_errors"] = failures  # noted in the run's plugin_errors, and warned about
    return info


def _instructions(target: Any) -> list[dict[str, Any]]:
    if target is None:
        return []
    rows = []
    for name in sorted(target.operation_names):
        for qargs, properties in (target[name] or {}).items():
            if properties is None or (properties.duration is None and properties.error is None):
                continue
            rows.append(
                {
                    "name": name,
                    "qubits": list(qargs) if qargs else None,
                    "duration_s": _finite(properties.duration),
                    "error": _finite(properties.error),
                }
            )
    return rows


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@hookimpl
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    """Circuits as OpenQASM 3 (for people and other tools) and QPY (an exact round trip, as
    ``<name>_qpy``); counts and results' counts as JSON; Aer noise models as their JSON dict
    (complex numbers as [re, im] pairs, as Aer writes them)."""
    if not _qiskit_loaded():
        return None
    import io
    import json

    from qiskit import QuantumCircuit, qasm3, qpy

    from qex_archive.recording.attachments import Attachment

    if isinstance(obj, QuantumCircuit):
        buffer = io.BytesIO()
        qpy.dump(obj, buffer)
        files = [Attachment(buffer.getvalue(), "application/x-qpy", "qpy", "_qpy")]
        try:
            text = qasm3.dumps(obj)
        except Exception:  # a circuit OpenQASM 3 cannot express: QPY alone keeps it
            return files
        return [Attachment(text.encode(), "text/x-openqasm", "qasm"), *files]
    noise_model = _noise_model_class()
    if noise_model is not None and isinstance(obj, noise_model):
        data = obj.to_dict(serializable=True)
        return [Attachment(_json_bytes(json.loads(json.dumps(data))), "application/json", "json")]
    get_counts = getattr(obj, "get_counts", None)
    if type(obj).__module__.startswith("qiskit") and callable(get_counts):
        return [Attachment(_json_bytes(dict(get_counts())), "application/json", "json")]
    return None


def _noise_model_class() -> Any:
    if "qiskit_aer" not in sys.modules:
        return None
    from qiskit_aer.noise import NoiseModel

    return NoiseModel


def _json_bytes(data: Any) -> bytes:
    import json

    return (json.dumps(data, sort_keys=True, indent=1) + "\n").encode()


def load_circuit(run: Run, name: str = "circuit") -> Any:
    """The attached circuit, exactly, from its QPY file. QPY is Qiskit's binary format: load
    it only from archives and bundles you trust (the QASM file is plain text for the rest)."""
    import io

    from qiskit import qpy

    (circuit,) = qpy.load(io.BytesIO(run.attachment(f"{name}_qpy").read()))
    return circuit


def load_counts(run: Run, name: str = "counts") -> Any:
    import json

    from qiskit.result import Counts

    return Counts(json.loads(run.attachment(name).read()))


def load_noise_model(run: Run, name: str = "noise_model") -> Any:
    import json
    import warnings

    from qiskit_aer.noise import NoiseModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # from_dict is what Aer offers
        return NoiseModel.from_dict(json.loads(run.attachment(name).read()))
