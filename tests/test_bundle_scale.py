"""Bundles of many runs stay small in memory: pack, verify and import of ten times the runs
peak only a little higher (each measured in a child process of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa

CHILD = """
import json, sys
import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle
action, archive_dir, bundle = sys.argv[1:4]
if action == "pack":
    with qa.open_archive(archive_dir, create=False) as arch:
        pack_bundle(arch, bundle)
elif action == "verify":
    read_bundle(bundle)
else:
    with qa.open_archive(archive_dir) as arch:
        print(len(import_bundle(arch, bundle).imported), file=sys.stderr)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps(peak / 1024))
"""


def _archive(root: Path, runs: int) -> Path:
    rng = np.random.default_rng(runs)
    with qa.open_archive(root) as arch, arch.batch():
        for i in range(runs):
            g = rng.normal(size=(4, 2)) + 1j * rng.normal(size=(4, 2))
            rho = g @ g.conj().T
            arch.record(
                f"sweep{i % 7}",
                params={"i": i, "theta": float(i) / runs},
                backend="sim",
                state=rho / np.trace(rho),
                renderers=[],
            )
    return root


def _peaks(tmp_path: Path, runs: int) -> dict[str, float]:
    source = _archive(tmp_path / f"source-{runs}", runs)
    bundle = tmp_path / f"{runs}.qexb"
    peaks = {}
    for action, directory in (
        ("pack", source),
        ("verify", source),
        ("import", tmp_path / f"in-{runs}"),
    ):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, action, str(directory), str(bundle)],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[action] = json.loads(done.stdout)
        if action == "import":
            assert done.stderr.strip() == str(runs)  # every run arrived
    return peaks


@pytest.mark.slow
def test_memory_grows_by_little_per_run(tmp_path: Path) -> None:
    small, large = _peaks(tmp_path, 1000), _peaks(tmp_path, 10_000)
    for action in ("pack", "verify", "import"):
        # Holding every run in memory (as the reader and writer once did) cost about 13 KB a
        # run, 1.3 GB at 100,000; read a batch at a time, what is left per run is the ZIP
        # layer's table of members (names, offsets, digests: about 0.6 KB) and an import's
        # list of the files it moved, for undoing them.
        per_run = (large[action] - small[action]) * 1024 / 9000
        assert per_run < 2.0, (action, f"{per_run:.2f} KB per run", small, large)
