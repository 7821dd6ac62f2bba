"""Fidelity, trace distance, partial trace, Pauli expectations and Bloch vectors, checked
against Qiskit and QuTiP (both test dependencies) and against exact values."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.physics import validation
from qex_archive.physics.measures import NonPhysicalWarning, physical_problem

from ..conftest import bell_state, random_density_matrix

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


def single_precision_pure_state() -> np.ndarray:
    """A 3-qubit pure state as a single-precision simulator gives it (complex64)."""
    rng = np.random.default_rng(0)
    psi = (rng.normal(size=8) + 1j * rng.normal(size=8)).astype(np.complex64)
    psi /= np.linalg.norm(psi)
    return np.outer(psi, psi.conj())


def test_a_state_recorded_as_physical_is_used_without_a_warning(archive: qa.Archive) -> None:
    rho = single_precision_pure_state()
    # off by more than double precision allows, well within single precision
    assert abs(np.trace(rho.astype(complex)) - 1) > validation.TOLERANCES["trace"]
    run = archive.record("sp", backend="cirq", state=rho)
    assert run.validation["is_valid"] and run.state_info["source_dtype"] == "complex64"
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonPhysicalWarning)
        assert qa.fidelity(run, rho) == pytest.approx(1.0, abs=1e-6)
        qa.bloch_vectors(run)
        qa.expectation(run, "ZZZ")
        run.trace_distance(run)
        qa.expectation(rho, "ZZZ")  # the array itself: made in the same precision
    assert physical_problem(run) is None and physical_problem(rho) is None
    # the same numbers as a double-precision state are off by more than its rounding
    assert physical_problem(rho.astype(np.complex128)) is not None


def test_measures_warn_about_exactly_the_states_validation_flags(archive: qa.Archive) -> None:
    rng = np.random.default_rng(21)
    verdicts = set()
    for i in range(60):
        dtype = (np.complex64, np.complex128)[i % 2]
        rho = random_density_matrix(4, rng)
        rho[0, 0] += 10.0 ** rng.uniform(-10, -3)  # a trace off by rounding, or by more
        if i % 3 == 0:  # a small negative eigenvalue
            rho = rho - (np.linalg.eigvalsh(rho)[0] + 10.0 ** rng.uniform(-10, -4)) * np.eye(4)
            rho = rho / np.trace(rho).real
        rho = rho.astype(dtype)
        run = archive.record("v", backend="b", state=rho)
        recorded = run.validation["is_valid"]
        assert (physical_problem(run) is None) == recorded, i
        assert (physical_problem(rho) is None) == recorded, i
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            qa.expectation(run, "ZZ")
        warned = [str(w.message) for w in caught if issubclass(w.category, NonPhysicalWarning)]
        assert bool(warned) is not recorded, i
        for finding in run.validation["findings"]:
            assert finding in warned[0]
        verdicts.add((str(np.dtype(dtype)), recorded))
    assert len(verdicts) == 4  # physical and not, in both precisions


class Qubits:
    """A framework's state object: only its plugin knows how to read it."""

    def __init__(self, vector: list[complex]) -> None:
        self.vector = vector


class QubitsPlugin:
    @qa.hookimpl
    def qex_convert_state(self, obj: object) -> qa.ArchivedState | None:
        return qa.ArchivedState(rho=obj.vector) if isinstance(obj, Qubits) else None


def test_framework_objects_are_converted_through_the_plugins_given(tmp_path: Path) -> None:
    from qex_archive import measures

    pm = qa.make_plugin_manager(load_third_party=False, extra_plugins=[QubitsPlugin()])
    zero, bell = Qubits([1, 0]), Qubits([1 / np.sqrt(2), 0, 0, 1 / np.sqrt(2)])
    assert measures.fidelity(zero, np.diag([1, 0]), plugins=pm) == pytest.approx(1.0)
    assert measures.trace_distance(zero, np.eye(2) / 2, plugins=pm) == pytest.approx(0.5)
    assert measures.expectation(zero, "Z", plugins=pm) == 1.0
    assert measures.bloch_vectors(zero, plugins=pm) == [[0.0, 0.0, 1.0]]
    np.testing.assert_allclose(measures.partial_trace(bell, [1], plugins=pm), np.eye(2) / 2)
    # the manager given is the one used: one without the plugin cannot read the object
    bare = qa.make_plugin_manager(load_third_party=False)
    with pytest.raises(qa.InvalidState, match=r"no installed plugin can convert a .*Qubits"):
        measures.fidelity(zero, zero, plugins=bare)
    # a run's own archive converts what it is measured against
    with qa.open_archive(tmp_path / "qex_data", plugins=pm) as arch:
        run = arch.record("e", backend="b", state=zero)
        assert measures.fidelity(run, zero) == pytest.approx(1.0)
        assert measures.trace_distance(zero, run) == pytest.approx(0.0, abs=1e-15)
        with pytest.raises(qa.InvalidState, match="no installed plugin can convert"):
            measures.fidelity(run, zero, plugins=bare)
        # and so do the run's own methods, and the top-level names
        assert run.fidelity(zero) == pytest.approx(1.0)
        assert run.trace_distance(Qubits([0, 1])) == pytest.approx(1.0)
        assert qa.fidelity(zero, run) == pytest.approx(1.0)


def test_without_plugins_a_manager_is_built_for_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import qex_archive.plugins
    from qex_archive import measures
    from qex_archive.physics import measures as physics_measures

    built: list[object] = []
    factory = qex_archive.plugins.make_plugin_manager

    def counting(**options: Any) -> Any:
        built.append(factory(**options, extra_plugins=[QubitsPlugin()]))
        return built[-1]

    monkeypatch.setattr(qex_archive.plugins, "make_plugin_manager", counting)
    zero = Qubits([1, 0])
    assert measures.fidelity(zero, zero) == pytest.approx(1.0)
    assert measures.expectation(zero, "Z") == 1.0
    assert len(built) == 2 and built[0] is not built[1]
    measures.fidelity(np.diag([1, 0]), [1, 0])  # arrays need no plugin, and get no manager
    assert len(built) == 2
    for module in (measures, physics_measures):
        cached = [
            name
            for name, value in vars(module).items()
            if isinstance(value, functools._lru_cache_wrapper)
        ]
        assert cached == [], module.__name__


def test_physics_imports_nothing_above_it_at_runtime() -> None:
    """physics is the lowest of the middle layers: numpy, the errors and the store only."""
    allowed = ("qex_archive.errors", "qex_archive.store", "qex_archive.physics")
    root = Path(qa.__file__).parent
    found = []
    for path in sorted((root / "physics").glob("*.py")):
        tree = ast.parse(path.read_text())
        checked = [node for node in tree.body if not _only_for_type_checking(node)]
        for node in (n for top in checked for n in ast.walk(top)):
            if isinstance(node, ast.ImportFrom):
                names = [_absolute(node.module, node.level)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [
                f"{path.name}:{node.lineno} {name}"
                for name in names
                if name.startswith("qex_archive") and not name.startswith(allowed)
            ]
    assert found == []


def _only_for_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _absolute(module: str | None, level: int) -> str:
    base = ["qex_archive", "physics"][: 2 - (level - 1)] if level else []
    return ".".join(base + ([module] if module else []))


def test_fidelity_and_trace_distance_need_no_dims_for_any_dimension() -> None:
    """A 6x6 pair (a qubit and a qutrit, or one six-level system: the measures do not care)
    is compared as it is; only the measures that look at subsystems ask for dims."""
    rng = np.random.default_rng(5)
    a, b = random_density_matrix(6, rng), random_density_matrix(6, rng)
    with_dims = qa.fidelity(a, b, dims=[2, 3])
    assert qa.fidelity(a, b) == pytest.approx(with_dims, abs=1e-12)
    assert qa.fidelity(a, a) == pytest.approx(1.0, abs=1e-9)
    distance = qa.trace_distance(a, b)
    assert distance == pytest.approx(qa.trace_distance(a, b, dims=[3, 2]), abs=1e-12)
    assert distance == pytest.approx(0.5 * np.abs(np.linalg.eigvalsh(a - b)).sum(), abs=1e-12)
    pure = np.zeros(6)
    pure[0] = 1  # a state vector of dimension 6 as well
    assert qa.fidelity(pure, np.eye(6) / 6) == pytest.approx(1 / 6)
    assert physical_problem(a) is None
    with pytest.raises(qa.InvalidState, match="multiply to 4"):
        qa.fidelity(a, b, dims=[2, 2])  # dims given are still checked
    for needs_dims in (
        lambda: qa.partial_trace(a, [0]),
        lambda: qa.bloch_vectors(a),
        lambda: qa.expectation(a, "ZZ"),
    ):
        with pytest.raises(qa.InvalidState, match=r"not a qubit register.*pass dims"):
            needs_dims()
    np.testing.assert_allclose(qa.partial_trace(a, [1], dims=[2, 3]).trace(), 1.0)
