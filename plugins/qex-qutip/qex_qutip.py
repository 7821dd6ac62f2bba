"""qex-archive plugin for QuTiP.

- ``Qobj`` kets, bras and density matrices become archived states with their ``dims``
  (QuTiP's tensor order is big-endian, as the archive's), qudits included.
- Solvers (``MESolver``, ``SESolver``, ...) and solver results are described with their
  options and the QuTiP version.

QuTiP is imported only when a QuTiP object is seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qex_archive import hookimpl

if TYPE_CHECKING:
    from qex_archive.recording.attachments import Attachment
    from qex_archive.recording.states import ArchivedState
    from qex_archive.run import Run

__version__ = "0.1.0"


def _is_qutip(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] == "qutip"


@hookimpl
def qex_convert_state(obj: object) -> ArchivedState | None:
    from qex_archive.recording.states import ArchivedState

    if not _is_qutip(obj):
        return None
    import qutip

    if not isinstance(obj, qutip.Qobj):
        return None
    if obj.isbra:
        obj = obj.dag()
    if obj.isket:
        data, kind, dims = obj.full().reshape(-1), "ket", obj.dims[0]
    elif obj.isoper and obj.dims[0] == obj.dims[1]:
        data, kind, dims = obj.full(), "density_matrix", obj.dims[0]
    else:
        return None
    return ArchivedState(
        rho=data,
        dims=[int(d) for d in dims],
        subsystem_labels=list(range(len(dims))),
        source_ordering="big_endian",
        source_kind=f"Qobj {kind}",
    )


def to_qobj(run: Run) -> Any:
    """The run's state as a QuTiP density-matrix ``Qobj`` with its dims."""
    import numpy as np
    import qutip

    dims = run.dims or [run.rho.shape[0]]
    return qutip.Qobj(np.array(run.rho), dims=[list(dims), list(dims)])


@hookimpl
def qex_backend_metadata(backend: object, backend_name: str) -> dict[str, Any] | None:
    if not _is_qutip(backend):
        return None
    import qutip

    info: dict[str, Any] = {"type": type(backend).__name__, "qutip_version": qutip.__version__}
    options = getattr(backend, "options", None)
    if isinstance(options, dict):
        info["options"] = {str(key): value for key, value in options.items() if _plain(value)}
    solver = getattr(backend, "solver", None)
    if isinstance(solver, str):
        info["solver"] = solver
    return info


def _plain(value: object) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


@hookimpl
def qex_serialize_attachment(obj: object, name: str) -> list[Attachment] | None:
    """A ``Qobj`` (a Hamiltonian, a collapse operator) as ``.npy`` of its matrix, and its
    dims and type as JSON beside it (``<name>_dims``); lists of them (collapse operators) one
    pair each would need names, so give them one by one."""
    if not _is_qutip(obj):
        return None
    import io
    import json

    import numpy as np
    import qutip

    from qex_archive.recording.attachments import Attachment

    if not isinstance(obj, qutip.Qobj):
        return None
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(obj.full(), dtype=np.complex128), allow_pickle=False)
    about = json.dumps({"dims": obj.dims, "type": obj.type}, indent=1).encode() + b"\n"
    return [
        Attachment(buffer.getvalue(), "application/x-npy", "npy"),
        Attachment(about, "application/json", "json", "_dims"),
    ]


def load_qobj(run: Run, name: str) -> Any:
    """An attached ``Qobj`` with its dims."""
    import io
    import json

    import numpy as np
    import qutip

    matrix = np.load(io.BytesIO(run.attachment(name).read()), allow_pickle=False)
    about = json.loads(run.attachment(f"{name}_dims").read())
    return qutip.Qobj(matrix, dims=about["dims"])
