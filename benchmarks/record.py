"""Recording and querying cost against bare numpy + SQLite doing the same work.

    python benchmarks/record.py              # 2,000 records; queries on 1,000 and 1,000,000 runs
    python benchmarks/record.py --quick      # 500 records; queries on 1,000 and 100,000 runs
    python benchmarks/record.py --smoke      # tiny sizes: checks the script runs, not the speed

Prints per-operation times and ratios; every baseline is measured in this same process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

import qex_archive as qa
from qex_archive.database import connect
from qex_archive.migrations import migrate
from qex_archive.plugins import make_plugin_manager
from qex_archive.run import RUN_COLUMNS
from qex_archive.storage import fsync_path

BELL = np.outer([1, 0, 0, 1], [1, 0, 0, 1]).astype(np.complex128) / 2
QUERY = (
    f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE experiment_name = ? "
    "ORDER BY timestamp DESC, run_id DESC LIMIT ? OFFSET ?"
)


def time_record(root: Path, n: int, renderers: list[str] | None) -> float:
    pm = make_plugin_manager(load_third_party=False)
    with qa.open_archive(root, plugins=pm, renderers=renderers) as arch:
        start = time.perf_counter()
        for i in range(n):
            arch.record("bench", params={"i": i, "theta": 0.1}, backend="sim", state=BELL)
        return (time.perf_counter() - start) / n


def write_file(path: Path, write: Callable[[BinaryIO], None], durable: bool) -> None:
    temp = path.with_name(".tmp-" + path.name)
    with open(temp, "wb") as stream:
        write(stream)
        if durable:
            stream.flush()
            os.fsync(stream.fileno())
    os.replace(temp, path)
    if durable:
        fsync_path(path.parent)


def time_floor(root: Path, n: int, template: tuple[str, ...], durable: bool, html: bool) -> float:
    """np.save (and a 5 KB HTML file) with the same crash-safe file protocol, then INSERT and
    COMMIT of the same rows into the same schema: the archive's work without the library."""
    (root / "results").mkdir(parents=True)
    (root / "artifacts").mkdir()
    conn = connect(root / "qex.db")
    migrate(conn)  # the same tables and indexes, so the database work is the same
    _, experiment, params, backend, _, _, metadata = template
    page = b"<!DOCTYPE html>" + b"x" * 5000
    start = time.perf_counter()
    for _ in range(n):
        run_id = str(uuid.uuid4())
        relative = f"results/{run_id}_rho.npy"
        write_file(root / relative, lambda stream: np.save(stream, BELL), durable)
        rows = [(relative, run_id, 320, "0" * 64)]
        if html:
            html_path = f"artifacts/{run_id}_bloch.html"
            write_file(root / html_path, lambda stream: stream.write(page), durable)
            rows.append((html_path, run_id, len(page), "0" * 64))
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, experiment, params, backend, time.time(), relative, metadata),
        )
        if html:
            conn.execute(
                "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
                "VALUES (?, ?, ?, ?)",
                (run_id, "bloch", rows[1][0], "text/html"),
            )
        conn.executemany(
            "INSERT INTO qex_files (path, run_id, size, sha256) VALUES (?, ?, ?, ?)", rows
        )
        conn.execute("COMMIT")
    elapsed = (time.perf_counter() - start) / n
    conn.close()
    return elapsed


def build_big_archive(root: Path, total: int, template: tuple[str, ...]) -> None:
    """``total`` runs in 20 experiments, inserted directly (the files are not needed to query)."""
    qa.open_archive(root).close()
    conn = sqlite3.connect(root / "qex.db")
    _, _, params, backend, _, _, metadata = template
    base = 1.7e9
    batch = []
    for i in range(total):
        run_id = str(uuid.uuid4())
        batch.append(
            (
                run_id,
                f"experiment_{i % 20}",
                params,
                backend,
                base + i,
                f"results/{run_id}_rho.npy",
                metadata,
            )
        )
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            conn.commit()
            batch.clear()
    conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    conn.commit()
    conn.close()


def time_queries(root: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of ``runs(experiment=X, limit=50)`` and of the same SQL, bare."""
    api_times, sql_times = [], []
    with qa.open_archive(root, create=False) as arch:
        bare = sqlite3.connect(root / "qex.db")
        for r in range(repeats):
            experiment = f"experiment_{r % 20}"
            start = time.perf_counter()
            rows = bare.execute(QUERY, (experiment, 50, 0)).fetchall()
            sql_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            runs = arch.runs(experiment=experiment, limit=50)
            api_times.append(time.perf_counter() - start)
            assert [run.row() for run in runs] == rows
        bare.close()
    return statistics.median(api_times), statistics.median(sql_times)


def time_command(argv: list[str], repeats: int, extra_env: dict[str, str] | None = None) -> float:
    env = {**os.environ, **(extra_env or {})}
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; numbers mean nothing")
    args = parser.parse_args()
    n_records, big, repeats = (
        (20, 2000, 3) if args.smoke else (500, 100_000, 25) if args.quick else (2000, 1_000_000, 25)
    )

    work = Path(tempfile.mkdtemp(prefix="qex-bench-", dir=os.environ.get("QEX_BENCH_DIR")))
    try:
        with qa.open_archive(work / "template") as arch:
            template = arch.record(
                "bench", params={"i": 0, "theta": 0.1}, backend="sim", state=BELL
            ).row()

        print(f"record: {n_records} two-qubit runs per round, 3 interleaved rounds, best of each")
        timings: dict[str, list[float]] = {}
        cases: dict[str, Callable[[Path], float]] = {
            "record_bloch": lambda root: time_record(root, n_records, None),
            "record_bare": lambda root: time_record(root, n_records, []),
            "floor_html": lambda root: time_floor(root, n_records, template, True, True),
            "floor": lambda root: time_floor(root, n_records, template, True, False),
            "floor_nofsync": lambda root: time_floor(root, n_records, template, False, False),
        }
        for round_ in range(3):
            for name, case in cases.items():
                timings.setdefault(name, []).append(case(work / f"{name}{round_}"))
        best = {name: min(values) for name, values in timings.items()}
        rows = [
            ("record(), Bloch renderer on", best["record_bloch"]),
            ("floor: .npy + 5 KB .html, fsync, INSERT", best["floor_html"]),
            ("record(renderers=[])", best["record_bare"]),
            ("floor: .npy, fsync, INSERT", best["floor"]),
            ("floor: .npy, no fsync, INSERT", best["floor_nofsync"]),
        ]
        for label, seconds in rows:
            print(f"  {label:42s} {seconds * 1e6:8.1f} us/run")
        ratios = {
            "record_bloch_over_floor_html": best["record_bloch"] / best["floor_html"],
            "record_bare_over_floor": best["record_bare"] / best["floor"],
            "record_bloch_over_core_floor": best["record_bloch"] / best["floor"],
        }
        labels = {
            "record_bloch_over_floor_html": "ratio with Bloch / floor with HTML  (target <= 1.5x)",
            "record_bare_over_floor": "ratio without renderers / floor     (target <= 1.5x)",
            "record_bloch_over_core_floor": "ratio with Bloch / floor without HTML",
        }
        for key, label in labels.items():
            print(f"  {label:56s} {ratios[key]:6.2f}x")

        for total in (1000, big):
            root = work / f"big{total}"
            start = time.perf_counter()
            build_big_archive(root, total, template)
            built = time.perf_counter() - start
            api, sql = time_queries(root, 41 if repeats > 3 else 3)
            print(f"query 'experiment X, newest 50' on {total:,} runs (built in {built:.0f} s)")
            print(
                f"  archive.runs()  {api * 1e3:8.3f} ms   bare SQL {sql * 1e3:8.3f} ms   "
                f"ratio {api / sql:.2f}x   (target <= 2x)"
            )
            shutil.rmtree(root)

        script = shutil.which("qex-archive")
        if script and not args.smoke:
            # Byte-compile as `pip install .` does; an editable install under
            # PYTHONDONTWRITEBYTECODE would otherwise recompile every module on every start.
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(Path(qa.__file__).parent)],
                check=True,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
            )
        if script:
            base = time_command([sys.executable, "-c", "import click, pluggy"], repeats)
            print(
                f"start-up, median of {repeats}; "
                f"python -c 'import click, pluggy': {base * 1e3:.1f} ms"
            )
            for label, extra_env in (
                ("qex-archive --help, installed plugins", {}),
                ("qex-archive --help, no third-party plugins", {"QEX_ARCHIVE_LOAD_PLUGINS": ""}),
            ):
                cli = time_command([script, "--help"], repeats, extra_env)
                ratios[label] = cli / base
                print(f"  {label:44s} {cli * 1e3:6.1f} ms   ratio {cli / base:.2f}x   (<= 1.3x)")
        print(json.dumps({name: round(value, 3) for name, value in ratios.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
