"""qex-qutip against the real QuTiP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import qex_qutip

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager

qutip = pytest.importorskip("qutip")


def archive(tmp_path: Path) -> qa.Archive:
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_qutip])
    return qa.open_archive(tmp_path / "qex_data", plugins=pm)


def test_mesolve_of_a_decaying_qubit_pair(tmp_path: Path) -> None:
    a = qutip.destroy(2)
    h = qutip.tensor(qutip.sigmax(), qutip.qeye(2)) + qutip.tensor(qutip.qeye(2), qutip.sigmaz())
    collapse = [np.sqrt(0.1) * qutip.tensor(a, qutip.qeye(2))]
    psi0 = qutip.tensor(qutip.basis(2, 0), qutip.basis(2, 1))
    solver = qutip.MESolver(qutip.QobjEvo(h), c_ops=collapse)
    result = solver.run(psi0, np.linspace(0, 1, 5))
    with archive(tmp_path) as arch:
        run = arch.record("decay", params={"gamma": 0.1}, backend=solver, state=result.states[-1])
        assert run.dims == [2, 2] and run.state_info["source_kind"] == "Qobj density_matrix"
        assert run.validation["is_valid"] and run.validation["purity"] < 1
        info = run.metadata["backend"]["qutip"]
        assert info["type"] == "MESolver" and info["qutip_version"] == qutip.__version__
        assert qex_qutip.to_qobj(run) == result.states[-1]


def test_kets_bras_and_qudit_dims(tmp_path: Path) -> None:
    psi = qutip.tensor(qutip.basis(3, 1), (qutip.basis(2, 0) + 1j * qutip.basis(2, 1)).unit())
    with archive(tmp_path) as arch:
        ket = arch.record("ket", backend="qutip", state=psi)
        bra = arch.record("bra", backend="qutip", state=psi.dag())
        assert ket.dims == [3, 2] == bra.dims and ket.state_info["source_kind"] == "Qobj ket"
        np.testing.assert_allclose(ket.rho, bra.rho)
        assert qex_qutip.to_qobj(ket) == qutip.ket2dm(psi)


def test_operators_travel_as_npy_with_their_dims(tmp_path: Path) -> None:
    import qutip

    from qex_archive.plugins import make_plugin_manager

    hamiltonian = qutip.tensor(qutip.sigmaz(), qutip.qeye(3)) + 0.5 * qutip.tensor(
        qutip.sigmax(), qutip.destroy(3) + qutip.create(3)
    )
    pm = make_plugin_manager(load_third_party=False, extra_plugins=[qex_qutip])
    with qa.open_archive(tmp_path / "lab", plugins=pm) as lab:
        run = lab.record(
            "jc", backend="qutip", state=qutip.tensor(qutip.basis(2, 0), qutip.basis(3, 1)),
            attach={"hamiltonian": hamiltonian},
        )  # fmt: skip
        assert run.attachment_names == ["hamiltonian", "hamiltonian_dims"]
        back = qex_qutip.load_qobj(run, "hamiltonian")
    assert back == hamiltonian and back.dims == hamiltonian.dims
