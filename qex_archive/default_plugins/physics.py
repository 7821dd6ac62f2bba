"""Is the density matrix a physical state: trace, Hermiticity, positivity, purity, entropy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..run import Run


@hookimpl
def qex_validate_run(run: Run, rho: npt.NDArray[np.complex128]) -> dict[str, Any]:
    from ..physics.validation import tolerances_for, validation_summary

    return validation_summary(rho, tolerances_for(run.state_info.get("source_dtype")))
