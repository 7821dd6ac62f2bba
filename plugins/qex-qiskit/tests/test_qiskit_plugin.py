"""qex-qiskit against the real Qiskit and Aer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def _noisy_simulation() -> tuple[Any, Any]:
    """A noise model with incoherent and coherent errors, and a trajectory simulator whose
    density matrix (averaged over shots) depends on its seed."""
    from qiskit.circuit.library import RXGate
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import (
        NoiseModel,
        amplitude_damping_error,
        coherent_unitary_error,
        depolarizing_error,
    )

    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(amplitude_damping_error(0.1), ["sx", "x"])
    noise.add_all_qubit_quantum_error(coherent_unitary_error(RXGate(0.2).to_matrix()), ["rz"])
    noise.add_all_qubit_quantum_error(depolarizing_error(0.05, 2), ["cx"])
    return noise, AerSimulator(method="statevector", noise_model=noise)


def _bell_with_saves() -> QuantumCircuit:
    """A Bell pair measured into c, with Aer's save instructions: the probabilities of qubit 0
    per shot, the density matrix after the measurement (averaged over the shots: it depends on
    the seed), and one inside a conditional block."""
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.save_probabilities([0], label="p0", pershot=True)
    circuit.measure([0, 1], [0, 1])
    circuit.save_density_matrix()
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(1)
        circuit.save_probabilities([1], label="p1_if_flipped")
    return circuit


def test_a_circuit_with_simulator_only_instructions_keeps_a_qasm_copy_that_says_so(
    tmp_path: Path,
) -> None:
    """The OpenQASM 3 copy holds what OpenQASM 3 can say (the circuit without Aer's save
    instructions), and the copy's note is warned about when recording and shown by show."""
    import warnings

    import qiskit.qasm3

    circuit = _bell_with_saves()
    with archive(tmp_path) as arch:
        with pytest.warns(qex_qiskit.QasmCopyWarning) as caught:
            run = arch.record(
                "bell", backend="aer", state=Statevector.from_label("00"), attach={"qc": circuit}
            )
        assert [str(w.message) for w in caught] == [
            "attachment 'qc': OpenQASM 3 copy leaves out save_probabilities, "
            "save_density_matrix (simulator-only); QPY holds all (qc_qpy)"
        ]
        assert issubclass(qex_qiskit.QasmCopyWarning, qa.PluginWarning)
        assert run.attachment_names == ["qc", "qc_qpy"]
        qasm = run.attachment("qc").read().decode()
        assert qasm.splitlines()[:2] == [
            "OPENQASM 3.0;",
            "// qex-note: OpenQASM 3 copy leaves out save_probabilities, save_density_matrix "
            "(simulator-only); QPY holds all",
        ]
        assert "save" not in qasm.split("\n", 2)[2]
        expected = QuantumCircuit(2, 2)
        expected.h(0)
        expected.cx(0, 1)
        expected.measure([0, 1], [0, 1])
        with expected.if_test((expected.clbits[0], 1)):
            expected.x(1)
        assert qiskit.qasm3.loads(qasm) == expected
        plain = QuantumCircuit(1)
        plain.h(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a circuit OpenQASM 3 expresses whole: no warning
            other = arch.record(
                "h", backend="aer", state=Statevector.from_label("+"), attach={"circuit": plain}
            )
        assert not other.attachment("circuit").read().decode().count("qex-note")
    shown = CliRunner().invoke(cli, ["-d", str(tmp_path / "qex_data"), "show", run.run_id])
    assert shown.exit_code == 0, shown.output
    notes = [line for line in shown.stdout.splitlines() if "leaves out" in line]
    assert len(notes) == 1
    label, text = notes[0].split(maxsplit=1)
    assert label == "qc" and text == (
        "OpenQASM 3 copy leaves out save_probabilities, save_density_matrix "
        "(simulator-only); QPY holds all"
    )
    plain_shown = CliRunner().invoke(cli, ["-d", str(tmp_path / "qex_data"), "show", other.run_id])
    assert "leaves out" not in plain_shown.stdout


def test_rerunning_an_archived_noisy_run_with_its_seed_reproduces_its_density_matrix(
    tmp_path: Path,
) -> None:
    """The archived circuit and noise model, handed to Aer with the stored seed, give the
    stored density matrix again (a trajectory simulation: the seed matters), and the per-shot
    save keeps its kind."""
    import warnings

    from qiskit_aer import AerSimulator

    noise, simulator = _noisy_simulation()
    circuit = transpile(_bell_with_saves(), simulator)
    seed, shots = 11, 64
    result = simulator.run(circuit, shots=shots, seed_simulator=seed).result()
    with archive(tmp_path) as arch, warnings.catch_warnings():
        warnings.simplefilter("ignore", qa.PluginWarning)  # the QASM copy's note: tested above
        run = arch.record(
            "bell_noisy",
            params={"seed_simulator": seed, "shots": shots},
            backend=simulator,
            state=result.data()["density_matrix"],
            attach={"circuit": circuit, "noise_model": noise},
        )
    with qa.open_archive(tmp_path / "qex_data", plugins=run.archive.plugins) as arch:
        stored = arch.get(run.run_id)
        again_circuit = qex_qiskit.load_circuit(stored)
        again_noise = qex_qiskit.load_noise_model(stored)
        rerun = AerSimulator(method="statevector", noise_model=again_noise)

        def density(seed: int) -> Any:
            data = rerun.run(again_circuit, shots=shots, seed_simulator=seed).result().data()
            assert len(data["p0"]) == shots  # pershot came back as pershot
            return qex_qiskit.reverse_subsystems(data["density_matrix"].data, [2, 2])

        np.testing.assert_allclose(density(stored.params["seed_simulator"]), stored.rho, atol=1e-10)
        assert again_circuit == circuit and again_circuit.metadata == circuit.metadata
        assert np.abs(density(seed + 1) - stored.rho).max() > 1e-3  # the seed is what matters


def test_a_circuit_archived_before_the_aer_notes_runs_on_aer(tmp_path: Path) -> None:
    """A QPY file without the plugin's notes (as archives hold them from before) still gives
    Aer's save instructions back, with their default kind."""
    import io

    from qiskit import qpy
    from qiskit_aer import AerSimulator

    circuit = QuantumCircuit(1)
    circuit.h(0)
    circuit.save_density_matrix(label="rho")
    circuit.save_statevector()
    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    with archive(tmp_path) as arch:
        run = arch.record(
            "old",
            backend="aer",
            state=Statevector.from_label("+"),
            attach={"circuit_qpy": buffer.getvalue()},
        )
        loaded = qex_qiskit.load_circuit(run)
    data = AerSimulator().run(loaded).result().data()
    assert DensityMatrix(data["rho"]) == DensityMatrix.from_label("+")
    assert Statevector(data["statevector"]).equiv(Statevector.from_label("+"))
    assert loaded == circuit


def _noise_errors() -> dict[str, Any]:
    from qiskit.circuit.library import RXGate
    from qiskit_aer.noise import (
        ReadoutError,
        amplitude_damping_error,
        coherent_unitary_error,
        depolarizing_error,
        kraus_error,
        mixed_unitary_error,
        pauli_error,
        phase_damping_error,
        reset_error,
        thermal_relaxation_error,
    )

    x = np.array([[0, 1], [1, 0]])
    return {
        "depolarizing": depolarizing_error(0.03, 1),
        "depolarizing_2q": depolarizing_error(0.05, 2),
        "amplitude_damping": amplitude_damping_error(0.1),
        "phase_damping": phase_damping_error(0.08),
        "thermal_relaxation": thermal_relaxation_error(50e3, 40e3, 300, 0.05),
        "thermal_relaxation_t2_above_t1": thermal_relaxation_error(50e3, 80e3, 300),
        "coherent_unitary": coherent_unitary_error(RXGate(0.3).to_matrix()),
        "mixed_unitary": mixed_unitary_error([(np.eye(2), 0.9), (1j * x, 0.1)]),
        "pauli": pauli_error([("X", 0.1), ("Y", 0.05), ("I", 0.85)]),
        "kraus": kraus_error([np.sqrt(0.9) * np.eye(2), np.sqrt(0.1) * x]),
        "reset": reset_error(0.1, 0.05),
        "readout": ReadoutError([[0.9, 0.1], [0.2, 0.8]]),
    }


@pytest.mark.parametrize("kind", list(_noise_errors()))
def test_every_kind_of_aer_noise_comes_back(tmp_path: Path, kind: str) -> None:
    """Each error kind of Aer's noise module, in a model on a device-like basis, recorded and
    loaded back: equal (the same channels and basis gates), the same simulation."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel, ReadoutError

    error = _noise_errors()[kind]
    noise = NoiseModel(basis_gates=["cx", "rz", "sx", "x"])
    if isinstance(error, ReadoutError):
        noise.add_readout_error(error, [0])
    elif error.num_qubits == 2:
        noise.add_quantum_error(error, ["cx"], [0, 1])
    else:
        noise.add_all_qubit_quantum_error(error, ["sx", "x"])
    with archive(tmp_path) as arch:
        run = arch.record(
            kind, backend="aer", state=Statevector.from_label("00"), attach={"noise_model": noise}
        )
        loaded = qex_qiskit.load_noise_model(arch.get(run.run_id))
    assert loaded == noise
    assert loaded.basis_gates == noise.basis_gates
    assert loaded.noise_instructions == noise.noise_instructions
    circuit = QuantumCircuit(2, 2)
    circuit.sx(0)
    circuit.x(1)
    circuit.cx(0, 1)
    circuit.rz(0.4, 1)
    circuit.save_density_matrix()
    circuit.measure([0, 1], [0, 1])
    results = [
        AerSimulator(method="density_matrix", noise_model=model)
        .run(circuit, shots=2000, seed_simulator=5)
        .result()
        for model in (noise, loaded)
    ]
    ours, theirs = (r.data()["density_matrix"].data for r in results)
    np.testing.assert_allclose(theirs, ours, atol=1e-12)
    assert results[0].get_counts() == results[1].get_counts()
