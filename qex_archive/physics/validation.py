"""What the archive records about a density matrix: is it a physical state, and how mixed.

Computed once when a run is recorded and stored in the run's metadata under ``validation``.
Non-physical matrices (raw tomography, say) are stored as they are and flagged here.

The one physicality test and its one tolerance table: the measures
(:mod:`qex_archive.physics.measures`) warn about exactly the states flagged here, so a state
the archive recorded as physical is never called non-physical when it is used.
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


# The full spectrum (eigenvalue range, positivity, entropy) is computed up to this dimension
# (11 qubits). Above it, by default, positivity is only checked on the diagonal and the entropy
# is not computed: the spectrum grows as d^3, and at 12 qubits it would cost many times the
# rest of a record (benchmarks/README.md, "Figures behind the code's choices").
SPECTRUM_MAX_DIM = 2048
SPECTRUM_ENV = "QEX_ARCHIVE_SPECTRUM"  # "full": always compute it
_BLOCK_ELEMENTS = 1 << 18  # row blocks of this many entries keep temporaries at 4 MiB


def validation_summary(
    rho: ComplexMatrix, tolerances: dict[str, float] | None = None, *, spectrum: bool | None = None
) -> dict[str, Any]:
    """Trace, Hermiticity, purity and (up to :data:`SPECTRUM_MAX_DIM`, or when ``spectrum``)
    the eigenvalue range and von Neumann entropy of ``rho``, and whether it is physical.

    Memory stays within a few MiB beyond the matrix: the O(d^2) quantities are summed over
    blocks of rows. Which checks ran is recorded under ``spectrum``."""
    tolerances = tolerances or dict(TOLERANCES)
    if spectrum is None:
        spectrum = spectrum_computed(rho.shape[0])
    trace = complex(np.trace(rho))
    hermitian_deviation, purity = _deviation_and_purity(rho)
    findings = []
    if abs(trace - 1) > tolerances["trace"]:
        findings.append(f"trace is {_fmt_complex(trace)}, not 1")
    if hermitian_deviation > tolerances["hermiticity"]:
        findings.append(f"not Hermitian: max |rho - rho^dagger| = {hermitian_deviation:.3g}")
    summary: dict[str, Any] = {
        "trace": trace.real,
        "trace_imag": trace.imag,
        "max_hermitian_deviation": hermitian_deviation,
        "min_eigenvalue": None,
        "max_eigenvalue": None,
        "purity": purity,
        "von_neumann_entropy_bits": None,
    }
    if spectrum:
        eigenvalues = np.linalg.eigvalsh(hermitian_part(rho))
        positive = eigenvalues[eigenvalues > 1e-15]
        summary["min_eigenvalue"] = float(eigenvalues[0])
        summary["max_eigenvalue"] = float(eigenvalues[-1])
        summary["von_neumann_entropy_bits"] = float(-np.sum(positive * np.log2(positive))) + 0.0
        if eigenvalues[0] < -tolerances["eigenvalue"]:
            findings.append(f"not positive semidefinite: smallest eigenvalue {eigenvalues[0]:.3g}")
        summary["spectrum"] = "full"
    else:
        # a positive semidefinite matrix has a non-negative diagonal: the O(d) part of the test
        smallest = float(np.min(np.real(np.diagonal(rho))))
        if smallest < -tolerances["eigenvalue"]:
            findings.append(f"not positive semidefinite: diagonal entry {smallest:.3g}")
        summary["spectrum"] = (
            f"not computed above dimension {SPECTRUM_MAX_DIM} (positivity checked on the "
            f"diagonal only, no entropy); set {SPECTRUM_ENV}=full to compute it"
        )
    summary.update(tolerances=tolerances, is_valid=not findings, findings=findings)
    return summary


def spectrum_computed(d: int) -> bool:
    """Whether the full spectrum of a ``d``-dimensional state is computed by default."""
    import os

    return d <= SPECTRUM_MAX_DIM or os.environ.get(SPECTRUM_ENV) == "full"


def hermitian_part(rho: ComplexMatrix) -> ComplexMatrix:
    """(rho + rho^dagger) / 2, whose spectrum stands for that of a matrix off by rounding."""
    part: ComplexMatrix = (rho + rho.conj().T) / 2
    return part


def purity(rho: ComplexMatrix) -> float:
    """Re Tr(rho^2), summed a block of rows at a time."""
    return _deviation_and_purity(rho)[1]


def _deviation_and_purity(rho: ComplexMatrix) -> tuple[float, float]:
    """max |rho - rho^dagger| and Re Tr(rho^2) = Re sum_ij rho_ij rho_ji (the purity of the
    Hermitian part), a block of rows at a time."""
    d = rho.shape[0]
    step = max(1, _BLOCK_ELEMENTS // d)
    deviation = 0.0
    purity = 0.0
    for start in range(0, d, step):
        rows = rho[start : start + step]
        columns_t = rho[:, start : start + step].T
        deviation = max(deviation, float(np.max(np.abs(rows - columns_t.conj()))))
        purity += float(np.real(np.sum(rows * columns_t)))
    return deviation, purity


def _fmt_complex(z: complex) -> str:
    return f"{z.real:.6g}" if z.imag == 0 else f"{z.real:.6g}{z.imag:+.3g}j"
