"""States given as numpy arrays or nested lists: density matrices or state vectors."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..recording.states import ArchivedState


@hookimpl(trylast=True)
def qex_convert_state(obj: object) -> ArchivedState | None:
    # Only plain arrays and lists: a framework object that merely supports __array__ may use
    # another qubit ordering, and must be converted by its own plugin.
    if type(obj).__module__ != "numpy" and not isinstance(obj, (list, tuple)):
        return None
    return ArchivedState(rho=obj)
