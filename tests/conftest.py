from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the user's $QEX_DATA or installed plugins, or writes into the working
    directory. Tests of plugin discovery set QEX_ARCHIVE_LOAD_PLUGINS themselves."""
    monkeypatch.delenv("QEX_DATA", raising=False)
    monkeypatch.delenv("QEX_ARCHIVE_RENDERERS", raising=False)
    monkeypatch.setenv("QEX_ARCHIVE_LOAD_PLUGINS", "")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def browser_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the webbrowser module read $BROWSER again: it caches its choice per process."""
    import webbrowser

    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "qex_data"


@pytest.fixture
def archive(data_dir: Path) -> Iterator[qa.Archive]:
    with qa.open_archive(data_dir) as arch:
        yield arch


def bell_state() -> np.ndarray:
    psi = np.array([1, 0, 0, 1], dtype=complex) / np.sqrt(2)
    return np.outer(psi, psi.conj())


def random_density_matrix(d: int, rng: np.random.Generator, rank: int | None = None) -> np.ndarray:
    rank = rank or d
    g = rng.normal(size=(d, rank)) + 1j * rng.normal(size=(d, rank))
    rho = g @ g.conj().T
    return rho / np.trace(rho)


def snapshot(root: Path) -> dict[str, object]:
    """Everything an archive holds: file names and hashes, and the database's full contents.

    The database is compared by its dump rather than its bytes because SQLite may touch
    the WAL/SHM files on a read.
    """
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("qex.db"):
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    db = root / "qex.db"
    dump: list[str] = []
    if db.exists():
        conn = sqlite3.connect(db)
        dump = list(conn.iterdump())
        conn.close()
    return {"files": files, "db": dump}
