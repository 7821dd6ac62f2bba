"""What the archive records about a density matrix: is it a physical state, and how mixed.

Computed once when a run is recorded and stored in the run's metadata under ``validation``.
Non-physical matrices (raw tomography, say) are stored as they are and flagged here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

ComplexMatrix = npt.NDArray[np.complex128]
TOLERANCES = {"trace": 1e-8, "hermiticity": 1e-8, "eigenvalue": 1e-8}
# Single-precision simulators (Cirq's default) round at ~1e-7 per entry.
SINGLE_PRECISION_TOLERANCES = {"trace": 1e-5, "hermiticity": 1e-5, "eigenvalue": 1e-5}
SINGLE_PRECISION_DTYPES = ("complex64", "float32", "float16")


def tolerances_for(source_dtype: str | None) -> dict[str, float]:
    """How far from exact a state may be and still count as physical, given its precision."""
    return dict(
        SINGLE_PRECISION_TOLERANCES if source_dtype in SINGLE_PRECISION_DTYPES else TOLERANCES
    )


def validation_summary(
    rho: ComplexMatrix, tolerances: dict[str, float] | None = None
) -> dict[str, Any]:
    tolerances = tolerances or dict(TOLERANCES)
    trace = complex(np.trace(rho))
    adjoint = rho.conj().T
    hermitian_deviation = float(np.max(np.abs(rho - adjoint)))
    eigenvalues = np.linalg.eigvalsh((rho + adjoint) / 2)
    # Tr(rho^2) = sum_ij rho_ij rho_ji; its real part is the purity of the Hermitian part.
    purity = float(np.real(np.sum(rho * rho.T)))
    positive = eigenvalues[eigenvalues > 1e-15]
    entropy_bits = float(-np.sum(positive * np.log2(positive))) + 0.0

    findings = []
    if abs(trace - 1) > tolerances["trace"]:
        findings.append(f"trace is {_fmt_complex(trace)}, not 1")
    if hermitian_deviation > tolerances["hermiticity"]:
        findings.append(f"not Hermitian: max |rho - rho^dagger| = {hermitian_deviation:.3g}")
    if eigenvalues[0] < -tolerances["eigenvalue"]:
        findings.append(f"not positive semidefinite: smallest eigenvalue {eigenvalues[0]:.3g}")
    return {
        "trace": trace.real,
        "trace_imag": trace.imag,
        "max_hermitian_deviation": hermitian_deviation,
        "min_eigenvalue": float(eigenvalues[0]),
        "max_eigenvalue": float(eigenvalues[-1]),
        "purity": purity,
        "von_neumann_entropy_bits": entropy_bits,
        "tolerances": tolerances,
        "is_valid": not findings,
        "findings": findings,
    }


def _fmt_complex(z: complex) -> str:
    return f"{z.real:.6g}" if z.imag == 0 else f"{z.real:.6g}{z.imag:+.3g}j"
