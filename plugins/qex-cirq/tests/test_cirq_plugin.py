"""qex-cirq against the real Cirq."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import qex_cirq

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager

cirq = pytest.importorskip("cirq")


def archive(tmp_path: Path) -> qa.Archive:
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_cirq])
    return qa.open_archive(tmp_path / "qex_data", plugins=pm)


def test_noisy_ghz_from_the_density_matrix_simulator(tmp_path: Path) -> None:
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.H(q[0]), cirq.CNOT(q[0], q[1]), cirq.CNOT(q[1], q[2]))
    simulator = cirq.DensityMatrixSimulator(noise=cirq.depolarize(0.02), seed=5)
    with archive(tmp_path) as arch:
        run = arch.record("ghz", backend=simulator, state=simulator.simulate(circuit))
        assert run.backend_name == "DensityMatrixSimulator"
        assert run.dims == [2, 2, 2] and run.state_info["subsystem_labels"] == [
            "q(0)",
            "q(1)",
            "q(2)",
        ]
        assert run.validation["is_valid"] and run.validation["purity"] < 1
        info = run.metadata["backend"]["cirq"]
        assert "depolarize" in info["noise_model"] and info["noiseless"] is False
        # Cirq simulates in single precision: judged with single-precision tolerances
        assert run.state_info["source_dtype"] == "complex64"
        assert run.validation["tolerances"]["trace"] == 1e-5
        np.testing.assert_allclose(
            qex_cirq.to_density_matrix(run),
            simulator.simulate(circuit).final_density_matrix,
            atol=1e-6,
        )


def test_state_vectors_and_qudits(tmp_path: Path) -> None:
    qutrit = cirq.LineQid(0, dimension=3)
    qubit = cirq.LineQid(1, dimension=2)
    circuit = cirq.Circuit(cirq.IdentityGate(qid_shape=(3, 2)).on(qutrit, qubit))
    with archive(tmp_path) as arch:
        run = arch.record(
            "qudits", backend=cirq.Simulator(), state=cirq.Simulator().simulate(circuit)
        )
        assert run.dims == [3, 2] and run.state_info["source_kind"] == "StateVectorTrialResult"
        assert run.metadata["backend"]["cirq"]["type"] == "Simulator"


def test_final_density_matrix_arrays_need_no_plugin(tmp_path: Path) -> None:
    q = cirq.LineQubit.range(2)
    rho = cirq.final_density_matrix(cirq.Circuit(cirq.H(q[0]), cirq.I(q[1])))
    with qa.open_archive(tmp_path / "plain") as arch:
        run = arch.record("plain", backend="cirq", state=rho)
        assert run.dims == [2, 2]
        np.testing.assert_allclose(run.rho, rho, atol=1e-7)


def test_a_device_with_metadata_is_described(tmp_path: Path) -> None:
    qubits = cirq.GridQubit.rect(1, 2)
    gateset = cirq.Gateset(cirq.CZPowGate, cirq.PhasedXZGate)
    metadata = cirq.GridDeviceMetadata(
        [(qubits[0], qubits[1])],
        gateset,
        gate_durations={
            cirq.GateFamily(cirq.CZPowGate): cirq.Duration(nanos=32),
            cirq.GateFamily(cirq.PhasedXZGate): cirq.Duration(nanos=25),
        },
    )

    class Chip(cirq.Device):
        @property
        def metadata(self) -> cirq.GridDeviceMetadata:
            return metadata

    with archive(tmp_path) as arch:
        run = arch.record(
            "e", backend=Chip(), state=cirq.Simulator().simulate(cirq.Circuit(cirq.I(qubits[0])))
        )
        info = run.metadata["backend"]["cirq"]
        assert info["qubits"] == ["q(0, 0)", "q(0, 1)"]
        assert len(info["gateset"]) == 2
        assert sorted(info["gate_durations_ns"].values()) == [25.0, 32.0]


def test_circuits_noise_models_and_results_travel_as_cirq_json(tmp_path: Path) -> None:
    import cirq

    q = cirq.LineQubit.range(2)
    circuit = cirq.Circuit(cirq.H(q[0]), cirq.CNOT(q[0], q[1]))
    noise = cirq.ConstantQubitNoiseModel(cirq.depolarize(0.01))
    simulator = cirq.DensityMatrixSimulator(noise=noise, seed=3)
    state = simulator.simulate(circuit)
    sampled = cirq.Simulator(seed=3).run(circuit + cirq.measure(*q, key="m"), repetitions=100)
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_cirq])
    with qa.open_archive(tmp_path / "lab", plugins=pm) as lab:
        run = lab.record(
            "bell", backend=simulator, state=state,
            attach={"circuit": circuit, "noise_model": noise, "counts": sampled},
        )  # fmt: skip
        qa.pack_bundle(lab, tmp_path / "b.qexb")
    with qa.open_archive(
        tmp_path / "there", plugins=make_plugin_manager(load_third_party=False)
    ) as there:
        qa.import_bundle(there, tmp_path / "b.qexb")
        copy = there.get(run.run_id)
        assert qex_cirq.load_cirq(copy, "circuit") == circuit
        assert qex_cirq.load_cirq(copy, "noise_model") == noise
        counts = json.loads(copy.attachment("counts").read())
        assert counts["repetitions"] == 100 and sum(counts["histograms"]["m"].values()) == 100
