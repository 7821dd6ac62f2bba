"""The benchmark scripts still run against the current code and report every ratio.

Their speed is not judged here (that is what the scripts print); only that they work, so
that a schema or API change cannot leave them broken until someone next measures.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_smoke(script: str, tmp_path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--smoke"],
        capture_output=True,
        text=True,
        env={**os.environ, "QEX_BENCH_DIR": str(tmp_path)},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(tmp_path.iterdir()) == [], "the benchmark left its working files behind"
    return results


def assert_positive(results: dict[str, float], keys: set[str]) -> None:
    assert keys <= results.keys(), keys - results.keys()
    for key in keys:
        assert math.isfinite(results[key]) and results[key] > 0, (key, results[key])


@pytest.mark.slow
def test_record_benchmark_runs(tmp_path: Path) -> None:
    results = run_smoke("record.py", tmp_path)
    assert_positive(
        results,
        {"record_bloch_over_floor_html", "record_bare_over_floor", "record_bloch_over_core_floor"},
    )


@pytest.mark.slow
def test_bundle_benchmark_runs(tmp_path: Path) -> None:
    results = run_smoke("bundle.py", tmp_path)
    keys = {
        f"{size}_{what}"
        for size in ("small", "large")
        for what in ("pack_ratio", "verify_ratio", "import_ratio", "import_peak_rss_mb")
    }
    keys |= {f"scale_{action}_growth" for action in ("pack", "verify", "import")}
    assert_positive(results, keys)


@pytest.mark.slow
def test_analysis_benchmark_runs(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    assert_positive(run_smoke("analysis.py", tmp_path), {"to_pandas_ratio", "rhos_ratio"})


@pytest.mark.slow
def test_remote_benchmark_runs(tmp_path: Path) -> None:
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    keys = {
        f"{size}_{what}" for size in ("small", "large") for what in ("push_ratio", "pull_ratio")
    }
    assert_positive(run_smoke("remote.py", tmp_path), keys)


@pytest.mark.slow
def test_serve_benchmark_runs(tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    results = run_smoke("serve.py", tmp_path)
    assert_positive(
        results,
        {f"{page}_page_ratio" for page in ("first", "deep", "filtered", "run")},
    )
