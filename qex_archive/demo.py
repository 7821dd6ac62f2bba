"""Simulated runs, computed with numpy alone, so a newcomer sees real data at once.

Three families: a Rabi sweep of one damped qubit, GHZ states of 2-4 qubits under
depolarising noise, and raw single-qubit tomography whose linear-inversion estimates are
sometimes non-physical (and get flagged, not fixed).

A demo is the same archive every time: its run IDs (UUID v4) and times follow from the seed,
so the examples of the README paste as written.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt

from .archive import Archive
from .store.query import RunFilter

ComplexMatrix = npt.NDArray[np.complex128]
PAULI_X = np.array([[0, 1], [1, 0]], dtype=np.complex128)
PAULI_Y = np.array([[0, -1j], [1j, 0]], dtype=np.complex128)
PAULI_Z = np.array([[1, 0], [0, -1]], dtype=np.complex128)
IDENTITY = np.eye(2, dtype=np.complex128)
BACKEND = "numpy_density_matrix"
EXPERIMENTS = ("rabi_sweep", "ghz_depolarizing", "tomography_1q")
# the demo's clock: the first run is three days before this (2026-11-26 09:00 UTC)
DEMO_NOW = 1795942800.0


def demo_run_id(seed: int, index: int) -> str:
    """The ID of the demo's ``index``-th run for ``seed``: a UUID v4 from a hash of both."""
    digest = hashlib.sha256(f"qex-archive demo {seed} {index}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def rabi_state(theta: float, damping: float, dephasing: float) -> ComplexMatrix:
    """R_x(theta)|0>, then amplitude damping (gamma) and phase damping (lambda)."""
    rx = np.cos(theta / 2) * IDENTITY - 1j * np.sin(theta / 2) * PAULI_X
    prepared = rx @ np.diag([1, 0]).astype(np.complex128) @ rx.conj().T
    k0 = np.array([[1, 0], [0, np.sqrt(1 - damping)]], dtype=np.complex128)
    k1 = np.array([[0, np.sqrt(damping)], [0, 0]], dtype=np.complex128)
    rho: ComplexMatrix = k0 @ prepared @ k0.conj().T + k1 @ prepared @ k1.conj().T
    coherence = np.sqrt(1 - dephasing)
    rho[0, 1] *= coherence
    rho[1, 0] *= coherence
    return rho


def ghz_state(n_qubits: int, depolarizing: float) -> ComplexMatrix:
    d = 2**n_qubits
    psi = np.zeros(d, dtype=np.complex128)
    psi[0] = psi[-1] = 1 / np.sqrt(2)
    pure = np.outer(psi, psi.conj())
    mixed: ComplexMatrix = (1 - depolarizing) * pure + depolarizing * np.eye(d) / d
    return mixed


def tomography_estimate(
    true_bloch: tuple[float, float, float], shots: int, rng: np.random.Generator
) -> ComplexMatrix:
    """Linear inversion from simulated Pauli measurements: can leave the Bloch ball."""
    estimate = []
    for component in true_bloch:
        plus = rng.binomial(shots, (1 + component) / 2)
        estimate.append(2 * plus / shots - 1)
    x, y, z = estimate
    rho: ComplexMatrix = (IDENTITY + x * PAULI_X + y * PAULI_Y + z * PAULI_Z) / 2
    return rho


def demo_run_count(archive: Archive) -> int:
    """How many of the archive's runs are demo runs (their experiments on the demo backend)."""
    return sum(archive.count(RunFilter(experiment=name, backend=BACKEND)) for name in EXPERIMENTS)


def remove_demo_runs(archive: Archive) -> int:
    """Delete the demo runs (inside the caller's batch, if any); return how many."""
    removed = 0
    with archive.batch():
        for name in EXPERIMENTS:
            for run in archive.runs(experiment=name, backend=BACKEND):
                archive.delete(run.run_id)
                removed += 1
    return removed


def fill_demo_archive(archive: Archive, *, seed: int = 2, now: float | None = None) -> Counter[str]:
    """Record the demo runs (one transaction); return how many of each experiment. The IDs
    follow from ``seed``, the times from ``now`` (by default the fixed :data:`DEMO_NOW`)."""
    rng = np.random.default_rng(seed)
    start = (DEMO_NOW if now is None else now) - 3 * 86400
    counts: Counter[str] = Counter()

    def record(experiment: str, params: dict[str, Any], rho: ComplexMatrix, **extra: Any) -> None:
        index = sum(counts.values())
        when = start + index * 600.0 + float(rng.uniform(0, 60))
        archive.record(
            experiment,
            params=params,
            backend=BACKEND,
            state=rho,
            timestamp=when,
            _run_id=demo_run_id(seed, index),
            **extra,
        )
        counts[experiment] += 1

    with archive.batch():
        for theta in np.linspace(0, 2 * np.pi, 21):
            params = {"theta_rad": round(float(theta), 6), "damping": 0.02, "dephasing": 0.05}
            record("rabi_sweep", params, rabi_state(float(theta), 0.02, 0.05))
        for n_qubits in (2, 3, 4):
            for p in (0.0, 0.05, 0.1, 0.2, 0.4):
                rho = ghz_state(n_qubits, p)
                fidelity = float(np.real(rho[0, 0] + rho[-1, -1] + 2 * rho[0, -1]) / 2)
                record(
                    "ghz_depolarizing",
                    {"n_qubits": n_qubits, "depolarizing": p, "shots": 4096},
                    rho,
                    metadata={"ghz_fidelity": round(fidelity, 12)},
                )
        for shots in (16, 64, 256, 1024, 4096):
            record(
                "tomography_1q",
                {"shots": shots, "target": "|+>", "preparation_fidelity": 0.98},
                tomography_estimate((0.96, 0.0, 0.0), shots, rng),
                metadata={"estimator": "linear_inversion"},
            )
    return counts
