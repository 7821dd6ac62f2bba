"""A state as the physics works on it: a complex128 C-ordered density matrix and its subsystem
dimensions, from an array (a density matrix or a state vector), a run, or a converted state.

The one coercion of numbers into a density matrix: recording builds the archived state on it
(:func:`qex_archive.recording.states.coerce_state`), and every measure reads its arguments
through :func:`as_state`. Framework objects are not read here: converting them needs the
plugins, which live above this layer, so the caller converts them first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import InvalidState

ComplexMatrix = npt.NDArray[np.complex128]


@dataclass(frozen=True)
class CanonicalState:
    """What :func:`canonical_state` made of its input, and what the input was."""

    rho: ComplexMatrix
    dims: list[int]
    kind: str  # "density_matrix" or "state_vector"
    source_dtype: str
    source_norm: float | None  # a state vector's norm before it was normalised


@dataclass(frozen=True)
class State:
    """A density matrix with its subsystem dimensions, where it came from (for messages) and
    the precision it was made in (which decides the tolerances of the physicality test)."""

    rho: ComplexMatrix
    dims: list[int]
    name: str
    source_dtype: str | None = None


def canonical_state(
    value: object, dims: Sequence[int] | None = None, *, need_dims: bool = True
) -> CanonicalState:
    """``value`` as a fresh-or-owned complex128 C-ordered square matrix with its ``dims``.

    ``value`` is anything numpy can read as a square matrix, or a state vector (taken as the
    pure state). NaN/Inf, non-numeric data and shapes that are not a register of the given
    (or inferred qubit) ``dims`` are refused. With ``need_dims=False`` (for a caller that
    never looks at subsystems: fidelity, trace distance) a dimension that is not a power of
    two without ``dims`` is taken as one system (``dims=[d]``) instead of refused.
    """
    try:
        array = np.asarray(value)
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
    norm = None
    if kind == "state_vector":
        vector, norm = _normalised(array)
        rho = np.outer(vector, vector.conj())
    else:
        # no copy when the input is already canonical: nothing here writes to it
        with np.errstate(over="ignore"):
            rho = np.ascontiguousarray(array, dtype=np.complex128)
        if not np.isfinite(rho).all():  # a long double beyond the range of a double
            raise InvalidState("state has entries too large for complex128 (overflow to inf)")
    d = rho.shape[0]
    if dims is None and not need_dims and d & (d - 1):
        dims = [d]
    return CanonicalState(rho, _subsystem_dims(d, dims), kind, str(array.dtype), norm)


def as_state(
    value: object,
    dims: Sequence[int] | None = None,
    name: str = "state",
    *,
    need_dims: bool = True,
) -> State:
    """A :class:`State`, a run, a converted state (anything with ``rho`` and ``dims``, such as
    an ``ArchivedState``) or an array (density matrix or state vector) as a :class:`State`;
    ``dims`` for qudits (a run knows its own). ``need_dims=False``: the caller never looks at
    subsystems, so an array of a dimension that is not a power of two is one system
    (``dims=[d]``) rather than refused (see :func:`canonical_state`)."""
    if isinstance(value, State):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        canonical = canonical_state(value, dims, need_dims=need_dims)
        return State(canonical.rho, canonical.dims, name, canonical.source_dtype)
    rho = getattr(value, "rho", None)
    if rho is not None and hasattr(value, "dims"):
        canonical = canonical_state(
            rho, dims if dims is not None else value.dims, need_dims=need_dims
        )
        run_id = getattr(value, "run_id", None)
        if isinstance(run_id, str):  # a run: its stored matrix, made in the precision recorded
            info = getattr(value, "state_info", None)
            dtype = info.get("source_dtype") if isinstance(info, dict) else None
            return State(canonical.rho, canonical.dims, f"run {run_id[:8]}", dtype)
        return State(canonical.rho, canonical.dims, name, canonical.source_dtype)
    raise InvalidState(
        f"a {type(value).__name__} is not an array, a run or a converted state; a framework "
        "object is converted by its plugin first (qex_archive.fidelity and the other public "
        "measures do that, with plugins=...)"
    )


def _normalised(array: Any) -> tuple[Any, float]:
    """A state vector scaled to norm 1, and its norm before: scaled by its largest entry
    first, so that neither the norm nor the outer product overflows (``[1e200, 0]`` is |0>)."""
    with np.errstate(over="ignore"):
        vector = array.astype(np.complex128)
    largest = float(np.max(np.abs(vector))) if vector.size else 0.0
    if not np.isfinite(largest):
        raise InvalidState("state has entries too large for complex128 (overflow to inf)")
    if largest == 0.0:
        raise InvalidState("state vector is zero; a pure state needs a non-zero vector")
    scaled = vector / largest
    length = float(np.linalg.norm(scaled))
    return scaled / length, largest * length


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
        if isinstance(n, bool) or not hasattr(n, "__index__") or n < 2:
            raise InvalidState(f"dims must be integers of at least 2, got {list(dims)!r}")
        checked.append(int(n))
    if not checked:
        raise InvalidState("dims is empty; give one dimension per subsystem")
    product = 1
    for n in checked:
        product *= n
    if product != d:
        raise InvalidState(f"dims {checked} multiply to {product}, but the state has dimension {d}")
    return checked
