"""Turning what a user hands over into the archive's density matrix: complex128, C order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import InvalidState

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    ComplexMatrix = npt.NDArray[np.complex128]


@dataclass(frozen=True)
class ArchivedState:
    """A density matrix and how its subsystems are laid out.

    What a ``qex_convert_state`` plugin returns: ``rho`` in big-endian kron order (anything
    numpy can turn into a square matrix, or a state vector), ``dims`` (None: qubits, inferred),
    ``subsystem_labels`` (None: 0, 1, ...) and the framework's own ``source_ordering``.
    :func:`coerce_state` turns it into the canonical form the archive stores.
    """

    rho: Any
    dims: list[int] | None = None
    subsystem_labels: list[Any] | None = None
    source_ordering: str = "big_endian"
    source_kind: str | None = None
    source_dtype: str | None = None
    source_norm: float | None = None  # a state vector's norm before it was normalised


def coerce_state(state: object, dims: Sequence[int] | None = None) -> ArchivedState:
    """The canonical form of a state: a fresh-or-owned complex128 C-ordered square matrix.

    ``state`` is an :class:`ArchivedState` or anything numpy can read as a square matrix (or a
    state vector, taken as the pure state). NaN/Inf, non-numeric data and shapes that are not
    a register of the given (or inferred qubit) ``dims`` are refused.
    """
    import numpy as np

    converted = state if isinstance(state, ArchivedState) else ArchivedState(state)
    try:
        array = np.asarray(converted.rho)
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
    subsystem_dims = _subsystem_dims(rho.shape[0], dims if dims is not None else converted.dims)
    labels = converted.subsystem_labels
    if labels is None or len(labels) != len(subsystem_dims):
        labels = list(range(len(subsystem_dims)))
    return ArchivedState(
        rho=rho,
        dims=subsystem_dims,
        subsystem_labels=list(labels),
        source_ordering=converted.source_ordering,
        source_kind=converted.source_kind or kind,
        source_dtype=str(array.dtype),
        source_norm=norm,
    )


def _normalised(array: Any) -> tuple[Any, float]:
    """A state vector scaled to norm 1, and its norm before: scaled by its largest entry
    first, so that neither the norm nor the outer product overflows (``[1e200, 0]`` is |0>)."""
    import numpy as np

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


def state_summary_problem(
    state: Any, shape: tuple[int, ...] | None, sha256: str | None
) -> str | None:
    """What in a run's ``metadata.state`` contradicts its ``.npy`` (``shape`` from the header,
    ``sha256`` of the file), or ``None``. Fields that are absent are not required."""
    if not isinstance(state, dict):
        return "is not an object"
    dims, stated_shape = state.get("dims"), state.get("shape")
    if "dtype" in state and state["dtype"] != "complex128":
        return f"says dtype {str(state['dtype'])[:40]!r}, the file holds complex128"
    if stated_shape is not None and shape is not None and list(shape) != stated_shape:
        return f"says shape {str(stated_shape)[:60]}, the file holds {list(shape)}"
    if dims is not None:
        if not isinstance(dims, list) or not all(
            type(n) is int and 2 <= n <= 1 << 31 for n in dims
        ):
            return "dims is not a list of integers of at least 2"
        product = 1
        for n in dims:
            product *= n
        d = shape[0] if shape is not None else None
        if isinstance(stated_shape, list) and stated_shape and d is None:
            d = stated_shape[0]
        if d is not None and product != d:
            return f"says dims {str(dims)[:60]} (dimension {product}), the matrix is {d}x{d}"
    if sha256 is not None and "sha256" in state and state["sha256"] != sha256:
        return "sha256 differs from the file's recorded checksum"
    return None
