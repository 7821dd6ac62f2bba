"""The measures of the public API (``qa.fidelity`` and the rest, and a run's methods): what the
caller hands over, a framework object converted through a plugin manager, then computed by
:mod:`qex_archive.physics.measures` (which knows no plugins: it is below them).

A framework object (a Qiskit ``DensityMatrix``, a QuTiP ``Qobj``, ...) is converted through
the plugin manager given as ``plugins=``; without one, through the manager of the archive of a
run among the arguments; without either, through a manager built for that call by
:func:`~qex_archive.plugins.make_plugin_manager`. There is no manager of this module's own.
Runs, arrays and converted states need no plugin and are passed on as they are.

Only the measures that look at subsystems (:func:`partial_trace`, :func:`expectation`,
:func:`bloch_vectors`) need subsystem dimensions: an array whose dimension is not a power of
two needs ``dims=`` there; :func:`fidelity` and :func:`trace_distance` compare any two d x d
states as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .physics import measures as physics
from .physics.measures import NonPhysicalWarning as NonPhysicalWarning

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pluggy

__all__ = [
    "NonPhysicalWarning",
    "bloch_vectors",
    "expectation",
    "fidelity",
    "partial_trace",
    "trace_distance",
]


def fidelity(
    a: object,
    b: object,
    *,
    dims: Sequence[int] | None = None,
    plugins: pluggy.PluginManager | None = None,
) -> float:
    """Uhlmann fidelity F = (Tr sqrt(sqrt(a) b sqrt(a)))^2, in [0, 1] for physical states
    (Qiskit's ``state_fidelity`` convention; QuTiP's ``fidelity`` is its square root).
    No ``dims`` needed for any d x d pair (a 6x6 one too): subsystems play no part; given
    ``dims`` are checked against the states."""
    first, second = _converted([a, b], plugins)
    return physics.fidelity(first, second, dims=dims)


def trace_distance(
    a: object,
    b: object,
    *,
    dims: Sequence[int] | None = None,
    plugins: pluggy.PluginManager | None = None,
) -> float:
    """T = 1/2 Tr|a - b|, in [0, 1] for physical states (QuTiP's ``tracedist``). No ``dims``
    needed for any d x d pair, as for :func:`fidelity`."""
    first, second = _converted([a, b], plugins)
    return physics.trace_distance(first, second, dims=dims)


def partial_trace(
    value: object,
    keep: Sequence[int],
    dims: Sequence[int] | None = None,
    *,
    plugins: pluggy.PluginManager | None = None,
) -> npt.NDArray[np.complex128]:
    """The reduced density matrix of the subsystems ``keep`` (in the order given), the others
    traced out."""
    (state,) = _converted([value], plugins)
    return physics.partial_trace(state, keep, dims)


def expectation(value: object, pauli: str, *, plugins: pluggy.PluginManager | None = None) -> float:
    """<P> = Tr(rho P) for a Pauli string such as ``"XZI"`` (one letter per qubit, the first
    for qubit 0); ``"-"`` or ``"i"`` prefixes are not accepted: use the sign yourself."""
    (state,) = _converted([value], plugins)
    return physics.expectation(state, pauli)


def bloch_vectors(
    value: object,
    dims: Sequence[int] | None = None,
    *,
    plugins: pluggy.PluginManager | None = None,
) -> list[list[float] | None]:
    """(x, y, z) of each qubit's reduced state, ``None`` for a subsystem that is not a qubit."""
    (state,) = _converted([value], plugins)
    return physics.bloch_vectors(state, dims)


def _converted(values: list[object], plugins: pluggy.PluginManager | None) -> list[object]:
    """``values`` with each framework object converted (see the module's docstring)."""
    foreign = [not _readable(value) for value in values]
    if not any(foreign):
        return values
    from ._plugin_calls import PluginCalls

    if plugins is None:
        plugins = _plugins_of_a_run(values)
    if plugins is None:
        from .plugins import make_plugin_manager

        plugins = make_plugin_manager()
    calls = PluginCalls(plugins)
    return [
        calls.convert_state(value) if is_foreign else value
        for value, is_foreign in zip(values, foreign, strict=True)
    ]


def _readable(value: object) -> bool:
    """Whether the physics reads ``value`` itself (no plugin needed)."""
    import numpy as np

    from .physics.states import State
    from .recording.states import ArchivedState
    from .run import Run

    return isinstance(value, (State, Run, ArchivedState, np.ndarray, list, tuple))


def _plugins_of_a_run(values: list[object]) -> pluggy.PluginManager | None:
    from .run import Run

    for value in values:
        if isinstance(value, Run):
            return value.archive.plugins
    return None
