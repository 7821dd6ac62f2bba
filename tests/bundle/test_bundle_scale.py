"""Bundles of many runs stay small in memory: pack, verify and import of ten times the runs
peak only a little higher (each measured in a child process of its own, as the bundle
benchmark measures them)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

import qex_archive as qa


def _benchmark() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bundle.py"
    spec = importlib.util.spec_from_file_location("bundle_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _peaks(bench: ModuleType, tmp_path: Path, runs: int) -> dict[str, float]:
    source, target, bundle = tmp_path / f"s{runs}", tmp_path / f"t{runs}", tmp_path / f"{runs}.qexb"
    bench.make_archive(source, runs, 2)
    peaks = {
        action: bench.child(action, directory, bundle)["peak_rss_mb"]
        for action, directory in (("pack", source), ("verify", source), ("import", target))
    }
    with qa.open_archive(target, create=False) as arch:
        assert arch.count() == runs  # every run arrived
    return peaks


@pytest.mark.slow
def test_memory_grows_by_little_per_run(tmp_path: Path) -> None:
    bench = _benchmark()
    small, large = _peaks(bench, tmp_path, 1000), _peaks(bench, tmp_path, 10_000)
    for action in ("pack", "verify", "import"):
        # Holding every run in memory (as the reader and writer once did) cost about 13 KB a
        # run, 1.3 GB at 100,000; read a batch at a time, what is left per run is the ZIP
        # layer's table of members (names, offsets, digests: about 0.6 KB) and an import's
        # list of the files it moved, for undoing them: 0.5-1.4 KB measured, and RSS is
        # noisy by a few MB, hence the margin.
        per_run = (large[action] - small[action]) * 1024 / 9000
        assert per_run < 3.0, (action, f"{per_run:.2f} KB per run", small, large)
