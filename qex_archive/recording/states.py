"""Turning what a user hands over into the archive's density matrix: complex128, C order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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
    # imported here: numpy loads only for commands that record or read states
    from ..physics.states import canonical_state

    converted = state if isinstance(state, ArchivedState) else ArchivedState(state)
    canonical = canonical_state(converted.rho, dims if dims is not None else converted.dims)
    labels = converted.subsystem_labels
    if labels is None or len(labels) != len(canonical.dims):
        labels = list(range(len(canonical.dims)))
    return ArchivedState(
        rho=canonical.rho,
        dims=canonical.dims,
        subsystem_labels=list(labels),
        source_ordering=converted.source_ordering,
        source_kind=converted.source_kind or canonical.kind,
        source_dtype=canonical.source_dtype,
        source_norm=canonical.source_norm,
    )
