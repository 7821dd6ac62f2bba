"""Fidelity, trace distance, partial trace, Pauli expectations and Bloch vectors, checked
against Qiskit and QuTiP (both test dependencies) and against exact values."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.physics.measures import NonPhysicalWarning

from .conftest import bell_state, random_density_matrix

DIMS = [[2], [2, 2], [2, 2, 2], [2, 2, 2, 2], [2] * 5, [2] * 6, [3], [3, 2], [2, 3, 2], [3, 3]]


def random_cases(count: int, seed: int) -> list[tuple[list[int], np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        dims = DIMS[i % len(DIMS)]
        d = int(np.prod(dims))
        cases.append((dims, random_density_matrix(d, rng), random_density_matrix(d, rng)))
    return cases


CASES = random_cases(1000, seed=11)


def test_fidelity_and_partial_trace_agree_with_qiskit() -> None:
    qi = pytest.importorskip("qiskit.quantum_info")
    for dims, a, b in CASES:
        qiskit_dims = tuple(reversed(dims))  # Qiskit counts subsystems from the right
        expected = qi.state_fidelity(
            qi.DensityMatrix(a, dims=qiskit_dims), qi.DensityMatrix(b, dims=qiskit_dims)
        )
        assert qa.fidelity(a, b, dims=dims) == pytest.approx(expected, abs=1e-10), dims
        n = len(dims)
        if n > 1:
            keep = [0, n - 1]
            traced = [n - 1 - k for k in range(n) if k not in keep]
            reduced = qi.partial_trace(qi.DensityMatrix(a, dims=qiskit_dims), traced).data
            np.testing.assert_allclose(qa.partial_trace(a, keep, dims), reduced, atol=1e-10)


def test_fidelity_trace_distance_and_ptrace_agree_with_qutip() -> None:
    qutip = pytest.importorskip("qutip")
    for dims, a, b in CASES:
        qa_, qb = qutip.Qobj(a, dims=[dims, dims]), qutip.Qobj(b, dims=[dims, dims])
        assert qa.fidelity(a, b, dims=dims) == pytest.approx(
            qutip.fidelity(qa_, qb) ** 2, abs=1e-10
        )
        assert qa.trace_distance(a, b, dims=dims) == pytest.approx(
            qutip.tracedist(qa_, qb), abs=1e-10
        )
        for keep in ([0], list(range(len(dims)))[::2]):
            np.testing.assert_allclose(
                qa.partial_trace(a, keep, dims), qa_.ptrace(keep).full(), atol=1e-10
            )


def test_pauli_expectations_agree_with_qiskit() -> None:
    qi = pytest.importorskip("qiskit.quantum_info")
    rng = np.random.default_rng(3)
    for dims, a, _ in CASES:
        if any(d != 2 for d in dims):
            continue
        label = "".join(rng.choice(list("IXYZ"), size=len(dims)))
        # the same matrix read by Qiskit: its qubit n-1 is our qubit 0, and a Pauli label's
        # first letter is its qubit n-1, so the labels coincide
        expected = qi.DensityMatrix(a).expectation_value(qi.Pauli(label)).real
        assert qa.expectation(a, label) == pytest.approx(expected, abs=1e-10), label


def test_pure_states_give_exact_overlaps() -> None:
    rng = np.random.default_rng(7)
    for n in range(1, 7):
        d = 2**n
        psi = rng.normal(size=d) + 1j * rng.normal(size=d)
        phi = rng.normal(size=d) + 1j * rng.normal(size=d)
        psi, phi = psi / np.linalg.norm(psi), phi / np.linalg.norm(phi)
        overlap = abs(np.vdot(psi, phi)) ** 2
        assert qa.fidelity(psi, phi) == pytest.approx(overlap, abs=1e-12)
        rho, sigma = np.outer(psi, psi.conj()), np.outer(phi, phi.conj())
        assert qa.fidelity(rho, sigma) == pytest.approx(overlap, abs=1e-10)
        assert qa.trace_distance(rho, sigma) == pytest.approx(np.sqrt(1 - overlap), abs=1e-10)
        assert qa.fidelity(rho, rho) == pytest.approx(1.0, abs=1e-12)


def test_bloch_vectors_and_runs(archive: qa.Archive) -> None:
    plus = np.array([1, 1]) / np.sqrt(2)
    product = np.kron(np.outer(plus, plus), np.diag([0, 1]))
    run = archive.record("e", backend="b", state=product)
    np.testing.assert_allclose(qa.bloch_vectors(run), [[1, 0, 0], [0, 0, -1]], atol=1e-15)
    assert run.bloch_vectors() == qa.bloch_vectors(product)
    bell = archive.record("e", backend="b", state=bell_state())
    assert run.fidelity(bell) == pytest.approx(qa.fidelity(product, bell_state()))
    assert bell.expectation("ZZ") == pytest.approx(1.0) and bell.expectation("XY") == 0.0
    np.testing.assert_allclose(bell.reduced([1]), np.eye(2) / 2, atol=1e-15)
    assert bell.trace_distance(run) == pytest.approx(qa.trace_distance(bell_state(), product))
    qutrit = archive.record("q", backend="b", state=np.eye(6) / 6, dims=[3, 2])
    first, second = qutrit.bloch_vectors()
    assert first is None and second == pytest.approx([0.0, 0.0, 0.0])


def test_non_physical_states_are_used_as_stored_and_flagged() -> None:
    raw = np.array([[1.1, 0], [0, -0.1]], dtype=complex)  # linear-inversion tomography
    with pytest.warns(NonPhysicalWarning, match=r"smallest eigenvalue -0.1\); computed on it"):
        value = qa.fidelity(raw, np.eye(2) / 2)
    # sqrt(1.1 / 2) + sqrt(-0.1 / 2) = 0.7416 + 0.2236i: the singular values of the product
    expected = (np.sqrt(1.1 / 2) + np.sqrt(0.1 / 2)) ** 2
    assert value == pytest.approx(expected, abs=1e-12)
    with pytest.warns(NonPhysicalWarning):
        assert qa.trace_distance(raw, np.diag([1, 0])) == pytest.approx(0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qa.fidelity(bell_state(), bell_state())  # physical: no warning


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: qa.fidelity(np.eye(2) / 2, np.eye(4) / 4), "cannot be compared"),
        (lambda: qa.partial_trace(bell_state(), [2]), "does not exist"),
        (lambda: qa.partial_trace(bell_state(), [0, 0]), "distinct"),
        (lambda: qa.expectation(bell_state(), "XQ"), "letters I, X, Y, Z"),
        (lambda: qa.expectation(bell_state(), "X"), "one letter each"),
        (lambda: qa.expectation(np.eye(6) / 6, "XX"), "dims"),
    ],
)
def test_bad_arguments_are_one_line_errors(call: object, message: str) -> None:
    with pytest.raises(qa.QexError, match=message):
        call()  # type: ignore[operator]
