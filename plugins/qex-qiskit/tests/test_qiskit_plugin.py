"""qex-qiskit against the real Qiskit and Aer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import qex_qiskit
from click.testing import CliRunner
from qiskit import QuantumCircuit, transpile
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.quantum_info import (
    DensityMatrix,
    Pauli,
    Statevector,
    partial_trace,
    random_density_matrix,
)

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle
from qex_archive.cli import cli
from qex_archive.plugins import make_plugin_manager


def archive(tmp_path: Path) -> qa.Archive:
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_qiskit])
    return qa.open_archive(tmp_path / "qex_data", plugins=pm)


def bloch(run: qa.Run) -> list[list[float]]:
    html = run.artifacts[0].path.read_text()
    data = json.loads(html.split('id="qex-data">')[1].split("</script>")[0])
    return [s["bloch"] for s in data["subsystems"]]


def test_aer_density_matrix_of_a_noisy_ghz_circuit(tmp_path: Path) -> None:
    aer = pytest.importorskip("qiskit_aer")
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.02, 2), ["cx"])
    simulator = aer.AerSimulator(method="density_matrix", noise_model=noise)
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.save_density_matrix()
    result = simulator.run(transpile(qc, simulator)).result()
    state = result.data(0)["density_matrix"]
    with archive(tmp_path) as arch:
        run = arch.record("ghz", params={"p": 0.02}, backend=simulator, state=state)
        assert run.dims == [2, 2, 2]
        assert run.state_info["source_ordering"] == "qiskit_little_endian"
        assert run.validation["is_valid"] and run.validation["purity"] < 1
        info = run.metadata["backend"]["qiskit"]
        assert info["simulator_method"] == "density_matrix" and info["noise_model"] is True
        assert info["name"] == run.backend_name
        assert qex_qiskit.to_density_matrix(run) == DensityMatrix(state)


def test_round_trip_gives_the_same_density_matrix(tmp_path: Path) -> None:
    with archive(tmp_path) as arch:
        for seed in range(5):
            original = random_density_matrix([2, 2, 2], seed=seed)
            run = arch.record("random", backend="statevector", state=original)
            assert qex_qiskit.to_density_matrix(run) == original
        vector = Statevector.from_label("+0-")
        run = arch.record("vector", backend="statevector", state=vector)
        assert qex_qiskit.to_density_matrix(run) == DensityMatrix(vector)


def test_plus_zero_has_qubit_0_on_x_and_qubit_1_on_z(tmp_path: Path) -> None:
    qc = QuantumCircuit(2)
    qc.h(0)
    with archive(tmp_path) as arch:
        run = arch.record("plus_zero", backend="statevector", state=DensityMatrix(qc))
        plus, zero = np.array([1, 1]) / np.sqrt(2), np.array([1, 0])
        psi = np.kron(plus, zero)
        np.testing.assert_allclose(run.rho, np.outer(psi, psi), atol=1e-15)
        np.testing.assert_allclose(bloch(run), [[1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_bloch_vectors_match_qiskit_and_qutip(tmp_path: Path) -> None:
    qutip = pytest.importorskip("qutip")
    with archive(tmp_path) as arch:
        for seed in range(20):
            n = 1 + seed % 4
            state = random_density_matrix(2**n, seed=seed)
            ours = bloch(arch.record("r", backend="b", state=state))
            for qubit in range(n):
                reduced = partial_trace(state, [k for k in range(n) if k != qubit])
                theirs = [reduced.expectation_value(Pauli(p)).real for p in "XYZ"]
                np.testing.assert_allclose(ours[qubit], theirs, atol=1e-12)
            # QuTiP, in big-endian order: qubit k of the archive is factor k of the Qobj
            qobj = qutip.Qobj(np.asarray(arch.runs(limit=1)[0].rho), dims=[[2] * n, [2] * n])
            for qubit in range(n):
                reduced = qobj.ptrace(qubit)
                expected = [
                    qutip.expect(op, reduced)
                    for op in (qutip.sigmax(), qutip.sigmay(), qutip.sigmaz())
                ]
                np.testing.assert_allclose(ours[qubit], expected, atol=1e-12)


def test_generic_backend_metadata_is_json_safe_and_shown(tmp_path: Path) -> None:
    backend = GenericBackendV2(num_qubits=3, seed=11)
    with archive(tmp_path) as arch:
        run = arch.record("bell", backend=backend, state=Statevector.from_label("00"))
    result = CliRunner().invoke(
        cli, ["-d", str(tmp_path / "qex_data"), "show", run.run_id[:8], "--json"]
    )
    info = json.loads(result.stdout)["metadata"]["backend"]["qiskit"]
    assert info["name"] == "generic_backend_3q" and info["num_qubits"] == 3
    assert info["dt_s"] > 0 and [0, 1] in info["coupling_map"]
    assert {"cx", "sx", "x"} <= set(info["operation_names"])
    assert len(info["qubit_properties"]) == 3 and all(
        q["t1_s"] > 0 for q in info["qubit_properties"]
    )
    cx = [row for row in info["instructions"] if row["name"] == "cx"]
    assert cx and all(row["duration_s"] > 0 and 0 < row["error"] < 1 for row in cx)
    json.dumps(info, allow_nan=False)


def test_a_backend_without_properties_still_records(tmp_path: Path) -> None:
    from qiskit.providers import BackendV2, Options
    from qiskit.transpiler import Target

    class Bare(BackendV2):
        def __init__(self) -> None:
            super().__init__(name="bare")

        @property
        def target(self) -> Target:
            raise NotImplementedError

        @property
        def max_circuits(self) -> None:
            return None

        @classmethod
        def _default_options(cls) -> Options:
            return Options()

        def run(self, run_input: object, **options: object) -> None:
            raise NotImplementedError

    with archive(tmp_path) as arch:
        run = arch.record("e", backend=Bare(), state=Statevector.from_label("0"))
        assert run.backend_name == "bare"
        info = run.metadata["backend"]["qiskit"]
        assert (
            info["name"] == "bare" and info["coupling_map"] is None and info["instructions"] is None
        )


def test_runs_open_pack_and_import_without_the_plugin(tmp_path: Path) -> None:
    with archive(tmp_path) as arch:
        run = arch.record(
            "e", backend=GenericBackendV2(num_qubits=2, seed=1), state=Statevector.from_label("+0")
        )
    bare = make_plugin_manager(load_third_party=False)
    with qa.open_archive(tmp_path / "qex_data", plugins=bare) as arch:
        again = arch.get(run.run_id)
        assert again.metadata["backend"]["qiskit"]["num_qubits"] == 2
        pack_bundle(arch, tmp_path / "b.qexb")
    with qa.open_archive(tmp_path / "elsewhere", plugins=bare) as other:
        assert len(import_bundle(other, tmp_path / "b.qexb").imported) == 1
        np.testing.assert_array_equal(other.get(run.run_id).rho, again.rho)


def test_a_noisy_aer_run_keeps_its_circuit_counts_and_noise_model(tmp_path: Path) -> None:
    """Recorded with its attachments, packed, imported where no Qiskit plugin is installed:
    the QASM is plain text that Qiskit reads back, and with the plugin the QPY circuit and the
    noise model come back equal."""
    import qiskit.qasm3
    from qiskit import QuantumCircuit, transpile
    from qiskit.quantum_info import Operator
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel, depolarizing_error

    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.02, 1), ["h"])
    noise.add_all_qubit_quantum_error(depolarizing_error(0.05, 2), ["cx"])
    simulator = AerSimulator(noise_model=noise, seed_simulator=7)
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    measured = circuit.copy()
    measured.save_density_matrix()
    result = simulator.run(transpile(measured, simulator), shots=1).result()
    sampled = circuit.copy()
    sampled.measure_all()
    counts = simulator.run(sampled, shots=500).result().get_counts()
    plugins = make_plugin_manager(load_third_party=False, extra_plugins=[qex_qiskit])
    with qa.open_archive(tmp_path / "lab", plugins=plugins) as lab:
        run = lab.record(
            "bell_noisy",
            backend=simulator,
            state=result.data()["density_matrix"],
            attach={"circuit": circuit, "counts": counts, "noise_model": noise},
        )
        assert run.attachment_names == ["circuit", "circuit_qpy", "counts", "noise_model"]
        qa.pack_bundle(lab, tmp_path / "b.qexb")
    bare = make_plugin_manager(load_third_party=False)  # no Qiskit plugin over there
    with qa.open_archive(tmp_path / "colleague", plugins=bare) as colleague:
        qa.import_bundle(colleague, tmp_path / "b.qexb")
        there = colleague.get(run.run_id)
        qasm = there.attachment("circuit").read().decode()
        assert qasm.startswith("OPENQASM 3")
        assert Operator(qiskit.qasm3.loads(qasm)).equiv(Operator(circuit))
        assert qex_qiskit.load_circuit(there) == circuit
        assert qex_qiskit.load_counts(there) == counts
        assert qex_qiskit.load_noise_model(there) == noise
