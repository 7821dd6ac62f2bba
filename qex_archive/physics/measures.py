"""Quantities of quantum states: fidelity, trace distance, partial trace, Pauli expectation
values and Bloch vectors. One implementation of each formula, numpy only, used by the Bloch
page, ``compare``, the Python API and anything built on them.

Every function takes a run, an array (a density matrix or a state vector), a converted state
(an ``ArchivedState``) or a :class:`~qex_archive.physics.states.State`. Framework objects are
converted by their plugin before they get here: the public functions of
:mod:`qex_archive.measures` do that. Subsystems are big-endian as everywhere in the archive:
subsystem 0 is the leftmost Kronecker factor, and the first letter of a Pauli string acts on it.

Numerically honest: a state that is not physical (raw tomography, say) is used as it is
stored, never projected onto the physical states, and a :class:`NonPhysicalWarning` says so.
"Physical" is the archive's own test (:func:`qex_archive.physics.validation.validation_summary`)
with the tolerances of the precision the state was made in, so a run recorded as physical is
used without a warning. The fidelity uses the Hermitian part of each matrix; for a matrix
with negative eigenvalues the square root in Uhlmann's formula is taken of those eigenvalues as
complex numbers, so the result may exceed 1: that is the data, flagged, not a bug.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidInput, InvalidState, NonPhysicalWarning
from .states import State, as_state
from .validation import hermitian_part, tolerances_for, validation_summary
from .validation import purity as purity

ComplexMatrix = npt.NDArray[np.complex128]
ROUNDING = 1e-14  # eigenvalues this close to zero (relative) are taken as zero
PAULIS = {
    "I": np.eye(2, dtype=np.complex128),
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}
__all__ = [
    "NonPhysicalWarning",
    "State",
    "as_state",
    "bloch_vector",
    "bloch_vectors",
    "expectation",
    "fidelity",
    "partial_trace",
    "physical_problem",
    "purity",
    "reduced_state",
    "trace_distance",
]


def fidelity(a: object, b: object, *, dims: Sequence[int] | None = None) -> float:
    """Uhlmann fidelity F = (Tr sqrt(sqrt(a) b sqrt(a)))^2, in [0, 1] for physical states
    (Qiskit's ``state_fidelity`` convention; QuTiP's ``fidelity`` is its square root).
    Subsystems play no part: any two d x d states are compared, ``dims`` or not."""
    first, second = _pair(a, b, dims)
    sqrt_a, sqrt_b = _sqrt_hermitian_part(first.rho), _sqrt_hermitian_part(second.rho)
    singular = np.linalg.svd(sqrt_a @ sqrt_b, compute_uv=False)
    return float(np.sum(singular) ** 2)


def trace_distance(a: object, b: object, *, dims: Sequence[int] | None = None) -> float:
    """T = 1/2 Tr|a - b|, in [0, 1] for physical states (QuTiP's ``tracedist``). Subsystems
    play no part: any two d x d states are compared, ``dims`` or not."""
    first, second = _pair(a, b, dims)
    difference = first.rho - second.rho
    singular = np.linalg.svd(difference, compute_uv=False)  # |eigenvalues| when Hermitian
    return float(np.sum(singular) / 2)


def partial_trace(
    value: object, keep: Sequence[int], dims: Sequence[int] | None = None
) -> ComplexMatrix:
    """The reduced density matrix of the subsystems ``keep`` (in the order given), the others
    traced out."""
    state = as_state(value, dims)
    n = len(state.dims)
    kept = _subsystems(keep, n)
    traced = [k for k in range(n) if k not in kept]
    tensor = state.rho.reshape(state.dims + state.dims)
    # trace pairs of axes from the highest down, so the lower axis numbers stay valid
    remaining = n
    for k in sorted(traced, reverse=True):
        tensor = np.trace(tensor, axis1=k, axis2=k + remaining)
        remaining -= 1
    order = sorted(kept)
    permutation = [order.index(k) for k in kept]
    tensor = tensor.transpose(permutation + [p + len(kept) for p in permutation])
    d = int(np.prod([state.dims[k] for k in kept], dtype=np.int64))
    reduced: ComplexMatrix = np.ascontiguousarray(tensor.reshape(d, d))
    return reduced


def expectation(value: object, pauli: str) -> float:
    """<P> = Tr(rho P) for a Pauli string such as ``"XZI"`` (one letter per qubit, the first
    for qubit 0); ``"-"`` or ``"i"`` prefixes are not accepted: use the sign yourself."""
    state = as_state(value)
    if not isinstance(pauli, str) or not pauli or set(pauli.upper()) - set(PAULIS):
        raise InvalidInput(f"Pauli string {pauli!r} must be letters I, X, Y, Z, one per qubit")
    if any(d != 2 for d in state.dims) or len(pauli) != len(state.dims):
        raise InvalidInput(
            f"Pauli string {pauli!r} has {len(pauli)} letters; the state has dims {state.dims} "
            f"(expectation values need qubits, one letter each)"
        )
    _warn_if_not_physical(state)
    n = len(pauli)
    if 2 * n > len(_LETTERS):
        raise InvalidInput(
            f"Pauli expectation values are computed for up to {len(_LETTERS) // 2} qubits"
        )
    # Tr(rho P) = sum over i, j of rho[i, j] P[j, i], with P a product of one-qubit factors
    rows, columns = _LETTERS[:n], _LETTERS[n : 2 * n]
    operands: list[Any] = [state.rho.reshape([2] * (2 * n))]
    subscripts = [rows + columns]
    for k, letter in enumerate(pauli.upper()):
        if letter != "I":
            operands.append(PAULIS[letter])
            subscripts.append(columns[k] + rows[k])
        else:  # the identity ties the row and column index of that qubit together
            subscripts[0] = subscripts[0].replace(columns[k], rows[k])
    total = np.einsum(",".join(subscripts) + "->", *operands, optimize=True)
    return float(np.real(total)) + 0.0


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def bloch_vectors(value: object, dims: Sequence[int] | None = None) -> list[list[float] | None]:
    """(x, y, z) of each qubit's reduced state, ``None`` for a subsystem that is not a qubit."""
    state = as_state(value, dims)
    vectors: list[list[float] | None] = []
    for k, d in enumerate(state.dims):
        reduced = reduced_state(state.rho, state.dims, k)
        vectors.append(list(bloch_vector(reduced)) if d == 2 else None)
    return vectors


def reduced_state(rho: ComplexMatrix, dims: Sequence[int], k: int) -> ComplexMatrix:
    """Partial trace over every subsystem except ``k``, fast (a view and one einsum)."""
    before = math.prod(int(d) for d in dims[:k])
    after = math.prod(int(d) for d in dims[k + 1 :])
    d = dims[k]
    blocks = rho.reshape(before, d, after, before, d, after)
    reduced: ComplexMatrix = np.einsum("aibajb->ij", blocks)
    return reduced


def bloch_vector(reduced: ComplexMatrix) -> tuple[float, float, float]:
    """(Tr ρX, Tr ρY, Tr ρZ) of a one-qubit density matrix (real parts)."""
    r01, r10 = reduced[0, 1], reduced[1, 0]
    x = (r01 + r10).real
    y = (1j * (r01 - r10)).real
    z = (reduced[0, 0] - reduced[1, 1]).real
    return float(x) + 0.0, float(y) + 0.0, float(z) + 0.0


def _pair(a: object, b: object, dims: Sequence[int] | None) -> tuple[State, State]:
    # neither measure looks at subsystems: a 6x6 pair needs no dims (given ones are checked)
    first = as_state(a, dims, "the first state", need_dims=False)
    second = as_state(b, dims, "the second state", need_dims=False)
    if first.rho.shape != second.rho.shape:
        raise InvalidState(
            f"{first.name} is {first.rho.shape[0]}-dimensional, {second.name} "
            f"{second.rho.shape[0]}-dimensional: they cannot be compared"
        )
    for state in (first, second):
        _warn_if_not_physical(state)
    return first, second


def _sqrt_hermitian_part(rho: ComplexMatrix) -> ComplexMatrix:
    eigenvalues, vectors = np.linalg.eigh(hermitian_part(rho))
    # eigenvalues within rounding of zero are zero (a pure state's other eigenvalues come out
    # near +-1e-17, whose roots would add ~1e-9 each); negative ones beyond that are data:
    # their roots are imaginary, not clipped
    noise = ROUNDING * max(1.0, float(np.max(np.abs(eigenvalues))))
    eigenvalues = np.where(np.abs(eigenvalues) <= noise, 0.0, eigenvalues)
    roots = np.sqrt(eigenvalues.astype(np.complex128))
    root: ComplexMatrix = (vectors * roots) @ vectors.conj().T
    return root


def physical_problem(value: object, tolerances: dict[str, float] | None = None) -> str | None:
    """Why a state is not physical, or ``None``: the archive's validation of it, with the
    tolerances of the precision it was made in unless ``tolerances`` are given. ``value`` is
    anything :func:`as_state` reads (a bare complex128 matrix: double-precision tolerances);
    subsystems play no part, so no ``dims`` are needed."""
    state = as_state(value, need_dims=False)
    findings = validation_summary(state.rho, tolerances or tolerances_for(state.source_dtype))[
        "findings"
    ]
    return "; ".join(findings) if findings else None


def _warn_if_not_physical(state: State) -> None:
    problem = physical_problem(state)
    if problem:
        warnings.warn(
            f"{state.name} is not a physical state ({problem}); computed on it as stored",
            NonPhysicalWarning,
            stacklevel=3,
        )


def _subsystems(keep: Sequence[int], n: int) -> list[int]:
    if isinstance(keep, (str, bytes)) or not isinstance(keep, Sequence):
        raise InvalidInput(f"keep must be a list of subsystem indices, not {keep!r}")
    checked = []
    for k in keep:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < n:
            raise InvalidInput(f"subsystem {k!r} does not exist; the state has {n} (0 to {n - 1})")
        checked.append(int(k))
    if len(set(checked)) != len(checked) or not checked:
        raise InvalidInput(f"keep {list(keep)} must name distinct subsystems, at least one")
    return checked
