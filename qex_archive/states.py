"""Turning what a user hands over into the archive's density matrix: complex128, C order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import InvalidState

ComplexMatrix = npt.NDArray[np.complex128]


@dataclass(frozen=True)
class ArchivedState:
    """A density matrix in the archive's canonical form and how its subsystems are laid out."""

    rho: ComplexMatrix
    dims: list[int]
    subsystem_labels: list[Any]
    source_ordering: str = "big_endian"
    source_kind: str = "density_matrix"


def coerce_state(state: object, dims: Sequence[int] | None = None) -> ArchivedState:
    """Accept a square matrix (or a state vector, taken as a pure state) as a density matrix.

    Lists and any real or complex numpy array are accepted; the result is a fresh
    complex128 C-ordered array. NaN/Inf, non-numeric data and shapes that are not a
    register of the given (or inferred qubit) dims are refused.
    """
    try:
        array = np.asarray(state)
    except (ValueError, TypeError) as exc:
        raise InvalidState(f"state is not a numeric array ({exc})") from None
    if array.dtype.kind not in "iufc":
        raise InvalidState(
            f"state has dtype {array.dtype}, expected numbers (a real or complex matrix)"
        )
    kind = "density_matrix"
    if array.ndim == 1:
        kind = "state_vector"
    elif array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise InvalidState(
            f"state has shape {array.shape}; expected a square matrix (d, d) or a vector (d,)"
        )
    if array.shape[0] < 2:
        raise InvalidState(f"state has dimension {array.shape[0]}; a system needs at least 2")
    if not np.isfinite(array).all():
        raise InvalidState("state contains NaN or infinite entries")
    vector_or_matrix = array.astype(np.complex128, order="C", copy=True)
    if kind == "state_vector":
        rho = np.outer(vector_or_matrix, vector_or_matrix.conj())
    else:
        rho = vector_or_matrix
    subsystem_dims = _subsystem_dims(rho.shape[0], dims)
    return ArchivedState(
        rho=rho,
        dims=subsystem_dims,
        subsystem_labels=list(range(len(subsystem_dims))),
        source_kind=kind,
    )


def _subsystem_dims(d: int, dims: Sequence[int] | None) -> list[int]:
    if dims is None:
        if d & (d - 1):
            raise InvalidState(
                f"a {d}x{d} state is not a qubit register ({d} is not a power of two); "
                f"pass dims=[...] with the subsystem dimensions, e.g. dims=[{d}] for one qudit"
            )
        return [2] * (d.bit_length() - 1)
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence):
        raise InvalidState(f"dims must be a list of integers, not {type(dims).__name__}")
    checked: list[int] = []
    for n in dims:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise InvalidState(f"dims must be integers of at least 2, got {list(dims)!r}")
        checked.append(int(n))
    if not checked:
        raise InvalidState("dims is empty; give one dimension per subsystem")
    product = int(np.prod(checked))
    if product != d:
        raise InvalidState(f"dims {checked} multiply to {product}, but the state has dimension {d}")
    return checked
