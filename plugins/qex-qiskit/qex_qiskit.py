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
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from qex_archive import hookimpl
from qex_archive.errors import PluginWarning

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


class QasmCopyWarning(PluginWarning):
    """An attached circuit's OpenQASM 3 copy is not the whole circuit (QPY holds all)."""


# A note at the top of an attachment's text (after the ``OPENQASM 3.0;`` line), shown by
# ``qex-archive show`` beside the attachment's name.
NOTE_PREFIX = "// qex-note: "
# In the QPY file's circuit metadata: the Aer instructions QPY cannot give back as they were
# (their class and data subtype), in the order of a depth-first walk; load_circuit removes it.
AER_METADATA_KEY = "qex_qiskit_aer_instructions"


@hookimpl
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    """Circuits as OpenQASM 3 (for people and other tools) and QPY (an exact round trip, as
    ``<name>_qpy``); counts and results' counts as JSON; Aer noise models as their JSON dict
    (complex numbers as [re, im] pairs, as Aer writes them, and the model's basis gates).

    A circuit with simulator-only instructions (Aer's ``save_density_matrix``, ...) gets an
    OpenQASM 3 copy without them, which says so in a ``// qex-note:`` line, and a
    :class:`QasmCopyWarning`; a circuit OpenQASM 3 cannot express at all is kept as QPY alone,
    with the same warning."""
    if not _qiskit_loaded():
        return None
    import io

    from qiskit import QuantumCircuit, qpy

    from qex_archive.recording.attachments import Attachment

    if isinstance(obj, QuantumCircuit):
        buffer = io.BytesIO()
        qpy.dump(_with_aer_instructions_noted(obj), buffer)
        files = [Attachment(buffer.getvalue(), "application/x-qpy", "qpy", "_qpy")]
        text = _qasm_copy(obj, name)
        if text is None:
            return files
        return [Attachment(text.encode(), "text/x-openqasm", "qasm"), *files]
    noise_model = _noise_model_class()
    if noise_model is not None and isinstance(obj, noise_model):
        data = obj.to_dict(serializable=True)
        data["basis_gates"] = sorted(obj.basis_gates)  # not in Aer's dict; from_dict ignores it
        return [Attachment(_json_bytes(data), "application/json", "json")]
    get_counts = getattr(obj, "get_counts", None)
    if type(obj).__module__.startswith("qiskit") and callable(get_counts):
        return [Attachment(_json_bytes(dict(get_counts())), "application/json", "json")]
    return None


def _callers_level() -> int:
    """The ``stacklevel`` that points a warning at the line that called qex-archive (its
    ``record``), past this plugin, qex-archive and pluggy."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and str(frame.f_globals.get("__name__")).split(".")[0] in (
        "qex_qiskit",
        "qex_archive",
        "pluggy",
    ):
        frame, level = frame.f_back, level + 1
    return level


def _is_simulator_only(operation: Any) -> bool:
    """Aer's own instructions (save, set, its control-flow marks): no OpenQASM 3 for them."""
    return (type(operation).__module__ or "").startswith("qiskit_aer")


def _qasm_copy(circuit: Any, name: str) -> str | None:
    """The circuit as OpenQASM 3, without its simulator-only instructions (said so in a note
    line and a warning); None, with a warning, when OpenQASM 3 cannot express it."""
    from qiskit import qasm3

    left_out: list[str] = []
    expressible = _without_simulator_only(circuit, left_out)
    try:
        text: str = qasm3.dumps(expressible)
    except Exception as exc:  # a circuit OpenQASM 3 cannot express: QPY alone keeps it
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        warnings.warn(
            f"attachment {name!r}: no OpenQASM 3 copy ({reason}); QPY ({name}_qpy) holds all",
            QasmCopyWarning,
            stacklevel=_callers_level(),
        )
        return None
    if not left_out:
        return text
    names = ", ".join(dict.fromkeys(left_out))
    note = f"OpenQASM 3 copy leaves out {names} (simulator-only); QPY holds all"
    warnings.warn(
        f"attachment {name!r}: {note} ({name}_qpy)", QasmCopyWarning, stacklevel=_callers_level()
    )
    header, _, rest = text.partition("\n")
    return f"{header}\n{NOTE_PREFIX}{note}\n{rest}"


def _without_simulator_only(circuit: Any, left_out: list[str]) -> Any:
    """A copy of ``circuit`` without simulator-only instructions (inside control flow too);
    their names are added to ``left_out``."""
    stripped = circuit.copy_empty_like()
    for instruction in circuit.data:
        operation = instruction.operation
        if _is_simulator_only(operation):
            left_out.append(operation.name)
            continue
        blocks = getattr(operation, "blocks", None)
        if blocks:
            operation = operation.replace_blocks(
                [_without_simulator_only(block, left_out) for block in blocks]
            )
            instruction = instruction.replace(operation=operation)
        stripped.append(instruction)
    return stripped


def _operations(circuit: Any) -> Iterator[Any]:
    """Every operation of the circuit, depth first through control-flow blocks."""
    for instruction in circuit.data:
        yield instruction.operation
        for block in getattr(instruction.operation, "blocks", None) or ():
            yield from _operations(block)


def _with_aer_instructions_noted(circuit: Any) -> Any:
    """The circuit to store as QPY: QPY gives Aer's instructions back as bare Instructions
    (name, qubits, params and label kept; class and data subtype lost), so a copy notes them
    in its metadata for :func:`load_circuit`."""
    noted = [
        {
            "name": operation.name,
            "class": f"{type(operation).__module__}.{type(operation).__qualname__}",
            "subtype": getattr(operation, "_subtype", None),
        }
        for operation in _operations(circuit)
        if _is_simulator_only(operation)
    ]
    if not noted:
        return circuit
    copy = circuit.copy()
    copy.metadata = {**(circuit.metadata or {}), AER_METADATA_KEY: noted}
    return copy


def _noise_model_class() -> Any:
    if "qiskit_aer" not in sys.modules:
        return None
    from qiskit_aer.noise import NoiseModel

    return NoiseModel


def _json_bytes(data: Any) -> bytes:
    import json

    return (json.dumps(data, sort_keys=True, indent=1) + "\n").encode()


def load_circuit(run: Run, name: str = "circuit") -> Any:
    """The attached circuit, exactly, from its QPY file, ready for ``AerSimulator.run``: Aer's
    simulator-only instructions (``save_density_matrix``, ...), which QPY gives back as bare
    Instructions, are made Aer's again. QPY is Qiskit's binary format: load it only from
    archives and bundles you trust (the QASM file is plain text for the rest)."""
    import io

    from qiskit import qpy

    (circuit,) = qpy.load(io.BytesIO(run.attachment(f"{name}_qpy").read()))
    metadata = dict(circuit.metadata or {})
    noted = metadata.pop(AER_METADATA_KEY, None)
    notes = [note for note in noted if isinstance(note, dict)] if isinstance(noted, list) else []
    circuit = _with_aer_instructions(circuit, notes)
    circuit.metadata = metadata
    return circuit


def _with_aer_instructions(circuit: Any, notes: list[dict[str, Any]]) -> Any:
    """``circuit`` with each bare Instruction named as one of Aer's made that instruction
    again, from the note QPY kept of it (else from its name, for archives written before the
    notes: then the data subtype is the class's default). The notes are taken in order, each by
    the bare Instruction of its name."""
    from qiskit.circuit import Instruction

    rebuilt = circuit.copy_empty_like()
    for instruction in circuit.data:
        operation = instruction.operation
        blocks = getattr(operation, "blocks", None)
        if blocks:
            new = operation.replace_blocks([_with_aer_instructions(b, notes) for b in blocks])
        elif type(operation) is Instruction and (aer := _aer_instruction(operation, notes)):
            new = aer
        else:
            new = operation
        rebuilt.append(instruction.replace(operation=new), copy=False)
    return rebuilt


def _aer_instruction(bare: Any, notes: list[dict[str, Any]]) -> Any:
    """Aer's instruction for a bare one from QPY, or None when it is not one of Aer's."""
    import importlib

    from qiskit.circuit import Instruction
    from qiskit_aer.library.save_instructions.save_data import SaveAverageData, SaveData

    known = _aer_classes()
    cls: Any = None
    note = notes.pop(0) if notes and notes[0].get("name") == bare.name else None
    subtype = None
    if note is not None:
        module, _, qualname = str(note.get("class", "")).rpartition(".")
        if module.split(".")[0] == "qiskit_aer":  # never import anything else from a file
            try:
                cls = getattr(importlib.import_module(module), qualname, None)
            except ImportError:
                cls = None
        subtype = note.get("subtype")
    if not (isinstance(cls, type) and (issubclass(cls, SaveData) or cls in known.values())):
        cls = known.get(bare.name)  # what the name says (archives written before the notes)
    if cls is None:
        return None
    made = cls.__new__(cls)
    if issubclass(cls, SaveData):
        if subtype not in SaveData._allowed_subtypes:
            subtype = "average" if issubclass(cls, SaveAverageData) else "single"
        SaveData.__init__(made, bare.name, bare.num_qubits, bare.label, subtype, bare.params)
    else:
        Instruction.__init__(
            made, bare.name, bare.num_qubits, bare.num_clbits, bare.params, label=bare.label
        )
    return made


def _aer_classes() -> dict[str, type]:
    """Aer's save and set instructions by instruction name."""
    from qiskit_aer import library

    names = {
        "save_amplitudes": "SaveAmplitudes",
        "save_amplitudes_sq": "SaveAmplitudesSquared",
        "save_clifford": "SaveClifford",
        "save_density_matrix": "SaveDensityMatrix",
        "save_expval": "SaveExpectationValue",
        "save_expval_var": "SaveExpectationValueVariance",
        "save_matrix_product_state": "SaveMatrixProductState",
        "save_probabilities": "SaveProbabilities",
        "save_probabilities_dict": "SaveProbabilitiesDict",
        "save_stabilizer": "SaveStabilizer",
        "save_state": "SaveState",
        "save_statevector": "SaveStatevector",
        "save_statevector_dict": "SaveStatevectorDict",
        "save_superop": "SaveSuperOp",
        "save_unitary": "SaveUnitary",
        "set_density_matrix": "SetDensityMatrix",
        "set_matrix_product_state": "SetMatrixProductState",
        "set_stabilizer": "SetStabilizer",
        "set_statevector": "SetStatevector",
        "set_superop": "SetSuperOp",
        "set_unitary": "SetUnitary",
    }
    return {
        name: cls
        for name, class_name in names.items()
        if (cls := getattr(library, class_name, None))
    }


def load_counts(run: Run, name: str = "counts") -> Any:
    import json

    from qiskit.result import Counts

    return Counts(json.loads(run.attachment(name).read()))


def load_noise_model(run: Run, name: str = "noise_model") -> Any:
    """The attached Aer noise model. Its JSON keeps complex matrices (coherent and Kraus
    errors) as [re, im] pairs, as Aer writes them; they are made complex again for Aer's
    ``from_dict``, and the model's basis gates are restored."""
    import json

    from qiskit_aer.noise import NoiseModel

    data = json.loads(run.attachment(name).read())
    basis_gates = data.pop("basis_gates", None)
    for error in data.get("errors", []):
        for circuit in error.get("instructions", []) if error.get("type") == "qerror" else []:
            for instruction in circuit:
                if instruction.get("name") in ("unitary", "kraus") and "params" in instruction:
                    instruction["params"] = _complex_matrices(
                        instruction["name"], instruction["params"]
                    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # from_dict is what Aer offers
        model = NoiseModel.from_dict(data)
    if isinstance(basis_gates, list) and hasattr(model, "_basis_gates"):
        model._basis_gates = set(basis_gates)  # no public setter; from_dict loses them
    return model


def _complex_matrices(kind: str, params: Any) -> Any:
    """A unitary's or Kraus operators' matrices back from JSON: a matrix of [re, im] pairs
    (a complex array, as Aer's encoder writes it) becomes complex, a matrix of numbers (a real
    array) stays as it is."""
    import numpy as np

    def matrix(value: Any) -> Any:
        array = np.asarray(value, dtype=float)
        if array.ndim == 3 and array.shape[-1] == 2:
            return array[..., 0] + 1j * array[..., 1]
        return array

    if kind == "unitary":
        return [matrix(params[0]), *params[1:]]
    return [matrix(value) for value in params]
