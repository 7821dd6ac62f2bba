"""qex-pennylane against the real PennyLane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import qex_pennylane

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager

qml = pytest.importorskip("pennylane")


def archive(tmp_path: Path) -> qa.Archive:
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_pennylane])
    return qa.open_archive(tmp_path / "qex_data", plugins=pm)


def test_noisy_ghz_on_default_mixed(tmp_path: Path) -> None:
    dev = qml.device("default.mixed", wires=["a", "b", "c"])

    @qml.qnode(dev)
    def ghz():
        qml.Hadamard("a")
        qml.CNOT(["a", "b"])
        qml.CNOT(["b", "c"])
        qml.DepolarizingChannel(0.05, wires="c")
        return qml.density_matrix(wires=["a", "b", "c"])

    with archive(tmp_path) as arch:
        run = arch.record("ghz", backend=dev, state=qex_pennylane.with_wires(ghz(), dev))
        assert run.backend_name == "default.mixed" and run.dims == [2, 2, 2]
        assert run.state_info["subsystem_labels"] == ["a", "b", "c"]
        assert run.validation["is_valid"] and run.validation["purity"] < 1
        info = run.metadata["backend"]["pennylane"]
        assert info["wires"] == ["a", "b", "c"] and info["shots"] is None
        np.testing.assert_allclose(qex_pennylane.to_array(run), ghz())


def test_state_on_default_qubit_and_plain_arrays(tmp_path: Path) -> None:
    dev = qml.device("default.qubit", wires=2)

    @qml.qnode(dev)
    def bell():
        qml.Hadamard(0)
        qml.CNOT([0, 1])
        return qml.state()

    with archive(tmp_path) as arch:
        run = arch.record("bell", backend=dev, state=bell())
        assert run.dims == [2, 2] and run.validation["purity"] == pytest.approx(1)
        assert run.metadata["backend"]["pennylane"]["num_wires"] == 2
        tensor = qml.numpy.array(np.eye(2) / 2)
        assert (
            arch.record("t", backend=dev, state=tensor).state_info["source_kind"]
            == "pennylane_tensor"
        )


def test_a_tape_travels_as_openqasm_and_json(tmp_path: Path) -> None:
    import json

    import numpy as np
    import pennylane as qml

    from qex_archive.plugins import make_plugin_manager

    with qml.tape.QuantumTape() as tape:
        qml.Hadamard(0)
        qml.RY(0.3, wires=1)
        qml.CNOT([0, 1])
        qml.probs(wires=[0, 1])
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_pennylane])
    with qa.open_archive(tmp_path / "lab", plugins=pm) as lab:
        run = lab.record(
            "bell", backend="default.mixed", state=np.eye(4) / 4, attach={"circuit": tape}
        )
        assert run.attachment_names == ["circuit", "circuit_ops"]
        described = json.loads(run.attachment("circuit_ops").read())
        assert [op["name"] for op in described["operations"]] == ["Hadamard", "RY", "CNOT"]
        back = qex_pennylane.load_tape(run)
    names = [op.name for op in back.operations]
    assert names[:3] == ["Hadamard", "RY", "CNOT"] and back.operations[1].parameters[0] == 0.3
