"""The four framework plugins together: one state, one archived matrix, whatever the framework;
and the README's examples for them run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli
from qex_archive.plugins import make_plugin_manager

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("qiskit", "cirq", "qutip", "pennylane")


@pytest.fixture
def everything(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> qa.Archive:
    for name in FRAMEWORKS:
        pytest.importorskip(f"qex_{name}")
        pytest.importorskip("cirq" if name == "cirq" else name)
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", ",".join(f"qex-{name}" for name in FRAMEWORKS))
    return qa.open_archive(tmp_path / "qex_data", plugins=make_plugin_manager())


def plus_zero_states() -> dict[str, object]:
    """|+> on qubit 0 and |0> on qubit 1, prepared the way each framework's users do it."""
    import cirq
    import pennylane as qml
    import qutip
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import DensityMatrix

    qc = QuantumCircuit(2)
    qc.h(0)
    q = cirq.LineQubit.range(2)
    dev = qml.device("default.mixed", wires=2)

    @qml.qnode(dev)
    def circuit():  # type: ignore[no-untyped-def]
        qml.Hadamard(0)
        return qml.density_matrix(wires=[0, 1])

    plus = (qutip.basis(2, 0) + qutip.basis(2, 1)).unit()
    return {
        "qiskit": DensityMatrix(qc),
        "cirq": cirq.DensityMatrixSimulator().simulate(cirq.Circuit(cirq.H(q[0]), cirq.I(q[1]))),
        "qutip": qutip.tensor(plus, qutip.basis(2, 0)),
        "pennylane": circuit(),
    }


def bloch(run: qa.Run) -> list[list[float]]:
    page = next(a for a in run.artifacts if a.name == "bloch").path.read_text()
    data = json.loads(page.split('id="qex-data">')[1].split("</script>")[0])
    return [s["bloch"] for s in data["subsystems"]]


def test_the_same_state_from_every_framework_is_archived_identically(
    everything: qa.Archive,
) -> None:
    psi = np.kron(np.array([1, 1]) / np.sqrt(2), [1, 0])
    expected = np.outer(psi, psi)
    for framework, state in plus_zero_states().items():
        run = everything.record(
            "plus_zero", params={"framework": framework}, backend=framework, state=state
        )
        np.testing.assert_allclose(run.rho, expected, atol=1e-7, err_msg=framework)
        np.testing.assert_allclose(bloch(run), [[1, 0, 0], [0, 0, 1]], atol=1e-6, err_msg=framework)
        assert run.dims == [2, 2]


def test_plugins_command_lists_the_four_with_versions(everything: qa.Archive) -> None:
    listed = {
        p["name"]: p for p in json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).stdout)
    }
    for name in FRAMEWORKS:
        assert listed[name]["version"] == "0.1.0"
        assert listed[name]["distribution"] == f"qex-{name}"
        assert {"qex_convert_state", "qex_backend_metadata"} <= set(listed[name]["hooks"])


def readme_framework_examples() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Backend plugins")[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_has_one_example_per_framework() -> None:
    examples = readme_framework_examples()
    assert len(examples) == 4
    for example, framework in zip(examples, FRAMEWORKS, strict=True):
        assert f"import {framework}" in example or f"from {framework}" in example


@pytest.mark.parametrize("index", range(4), ids=FRAMEWORKS)
def test_readme_framework_example_runs(
    everything: qa.Archive,
    index: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_framework_examples()[index], "README.md", "exec"), {})
    assert capsys.readouterr().out.strip()
    with qa.open_archive(tmp_path / "qex_data") as arch:
        assert arch.count() == 1
