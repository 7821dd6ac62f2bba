"""Selections for analysis against pandas and numpy doing the same reads bare.

    python benchmarks/analysis.py            # to_pandas of 100,000 runs; rhos of 10,000
    python benchmarks/analysis.py --smoke    # tiny sizes: checks the script runs

- to_pandas(): a selection of N runs as a DataFrame, against ``pandas.read_sql`` of the same
  rows (run_id, experiment, backend, timestamp, params, metadata) plus ``json_normalize`` of
  their params, the usual hand-written way.
- rhos(): N two-qubit density matrices as one array, against ``np.stack`` of
  ``np.load(mmap_mode="r")`` of the same files.
Medians of 5 rounds, in this process; ratios printed last as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager

BELL = np.outer([1, 0, 0, 1], [1, 0, 0, 1]).astype(np.complex128) / 2


def build(root: Path, runs: int, files: int) -> None:
    """``files`` runs recorded for real (with their .npy), the rest inserted as rows."""
    pm = make_plugin_manager(load_third_party=False)
    with qa.open_archive(root, plugins=pm, renderers=[]) as arch:
        with arch.batch():
            for i in range(files):
                arch.record("e", params={"i": i, "theta": i / 7}, backend="sim", state=BELL)
        template = arch.runs(limit=1)[0].row()
    conn = sqlite3.connect(root / "qex.db")
    rows = []
    for i in range(files, runs):
        run_id = str(uuid.uuid4())
        params = json.dumps({"i": i, "theta": i / 7, "shots": 1024})
        rows.append((run_id, "e", params, "sim", 1.7e9 + i, template[5], template[6]))
    conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def median_time(function: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    import resource

    import pandas as pd

    # the floor keeps a memory map (and so a file descriptor) per file until np.stack is done
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    table_runs, matrix_runs, rounds = (2000, 200, 2) if args.smoke else (100_000, 10_000, 5)
    work = Path(tempfile.mkdtemp(prefix="qex-analysis-", dir=os.environ.get("QEX_BENCH_DIR")))
    try:
        root = work / "qex"
        build(root, table_runs, matrix_runs)
        ratios = {}
        with qa.open_archive(root, create=False) as arch:
            selection = arch.runs()
            conn = sqlite3.connect(root / "qex.db")

            def bare_table() -> object:
                frame = pd.read_sql(
                    "SELECT run_id, experiment_name, backend_name, timestamp, params, metadata "
                    "FROM runs ORDER BY timestamp DESC",
                    conn,
                )
                params = pd.json_normalize([json.loads(p) for p in frame["params"]])
                return pd.concat(
                    [frame.drop(columns=["params"]), params.add_prefix("params.")], axis=1
                )

            qex_s = median_time(selection.to_pandas, rounds)
            bare_s = median_time(bare_table, rounds)
            ratios["to_pandas_ratio"] = qex_s / bare_s
            print(
                f"to_pandas of {table_runs:,} runs  {qex_s:.3f} s   read_sql + json_normalize "
                f"{bare_s:.3f} s   ratio {qex_s / bare_s:.2f}x (target <= 2x)"
            )
            matrices = arch.runs(limit=matrix_runs, sort="params.i")
            matrices = type(matrices)(arch, [r for r in matrices if r.params.get("shots") is None])
            paths = [r.rho_path for r in matrices]

            def bare_stack() -> object:
                return np.stack([np.load(path, mmap_mode="r") for path in paths])

            qex_s = median_time(matrices.rhos, rounds)
            bare_s = median_time(bare_stack, rounds)
            np.testing.assert_array_equal(matrices.rhos(), bare_stack())
            ratios["rhos_ratio"] = qex_s / bare_s
            print(
                f"rhos of {len(paths):,} runs  {qex_s:.3f} s   np.stack of np.load(mmap) "
                f"{bare_s:.3f} s   ratio {qex_s / bare_s:.2f}x (target <= 2x)"
            )
            conn.close()
            from qex_archive.views.report import report_page

            reported = arch.runs(limit=matrix_runs, sort="params.i")
            start = time.perf_counter()
            size = len(report_page(reported, page_dir=root))
            seconds = time.perf_counter() - start
            ratios["report_seconds"] = seconds
            print(
                f"report of {len(reported):,} runs  {seconds:.2f} s  {size / 1e6:.2f} MB "
                "(target < 5 s, < 5 MB)"
            )
        print(json.dumps({key: round(value, 3) for key, value in ratios.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
