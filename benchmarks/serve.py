"""`qex-archive serve` pages against the bare SQL of the same page, server-side.

    python benchmarks/serve.py            # 1,000,000 runs
    python benchmarks/serve.py --quick    # 100,000 runs
    python benchmarks/serve.py --smoke    # tiny sizes: checks the script runs

The archive: ``--files`` runs recorded for real in one ``batch()`` (their .npy files, no
pages), the rest inserted as rows like them (10 experiments, 2 backends, params ``i`` and
``theta``). Each page is asked of the ASGI app directly (no HTTP, no client: the server's own
time, routing, Host check, query, HTML and all), ``--rounds`` times:

- first: ``/`` (100 runs, newest first);
- deep: ``/?before=...`` with a cursor in the middle of the time index;
- filtered: ``/?e=e3&p=i%3E...`` (an experiment and a param condition);
- run: ``/runs/<id>`` of a 2-qubit run (its spheres drawn from the .npy).

Against each, the bare SQL a hand-written page would run (the rows of the page with sqlite3;
for the run page its row, artifacts, tags and notes and ``np.load`` of its matrix). Prints
p50/p95 of both and the ratio of the p50s; the last line is the ratios as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager
from qex_archive.server.app import make_app

BELL = np.outer([1, 0, 0, 1], [1, 0, 0, 1]).astype(np.complex128) / 2
COLUMNS = "run_id, experiment_name, params, backend_name, timestamp, density_matrix_path, metadata"
T0 = 1.7e9
LOOP = (
    asyncio.new_event_loop()
)  # one loop, as uvicorn has: its worker threads keep their connections


def build(root: Path, runs: int, files: int) -> str:
    """The archive; the ID of a run recorded for real."""
    pm = make_plugin_manager(load_third_party=False)
    with qa.open_archive(root, plugins=pm, renderers=[]) as arch:
        with arch.batch():
            for i in range(files):
                arch.record(
                    f"e{i % 10}",
                    params={"i": i, "theta": i / 7},
                    backend=f"b{i % 2}",
                    state=BELL,
                    timestamp=T0 + i,
                )
        template = arch.runs(limit=1)[0].row()
    conn = sqlite3.connect(root / "qex.db")
    batch: list[tuple[Any, ...]] = []
    for i in range(files, runs):
        params = json.dumps({"i": i, "theta": i / 7})
        batch.append(
            (str(uuid.uuid4()), f"e{i % 10}", params, f"b{i % 2}", T0 + i, template[5], template[6])
        )
        if len(batch) == 100_000:
            conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
            batch = []
    conn.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return str(template[0])


def asgi_get(app: Any, path: str) -> tuple[int, bytes]:
    """One GET through the ASGI app, in this process."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    status: list[int] = []
    body: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    LOOP.run_until_complete(app(scope, receive, send))
    return status[0], b"".join(body)


def timings(function: Callable[[], object], rounds: int) -> list[float]:
    function()  # warm: caches, the thread's connection
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        out.append(time.perf_counter() - start)
    return out


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 runs")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--files", type=int, default=2000, help="runs recorded for real")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    runs = 2000 if args.smoke else 100_000 if args.quick else 1_000_000
    files = min(args.files, 200 if args.smoke else args.files, runs)
    rounds = 5 if args.smoke else args.rounds
    work = Path(tempfile.mkdtemp(prefix="qex-serve-", dir=os.environ.get("QEX_BENCH_DIR")))
    try:
        root = work / "qex"
        start = time.perf_counter()
        run_id = build(root, runs, files)
        print(f"{runs:,} runs ({files:,} recorded) in {time.perf_counter() - start:.1f} s")
        app = make_app(root, time_limit=30.0)
        db = sqlite3.connect(f"{(root / 'qex.db').as_uri()}?mode=ro", uri=True)
        middle = T0 + runs // 2
        deep_cursor = f"{middle!r},{'f' * 36}"
        threshold = runs // 2
        page_sql = f"SELECT {COLUMNS} FROM runs{{}} ORDER BY timestamp DESC, run_id DESC LIMIT 101"

        def bare_rows(where: str, values: list[Any]) -> Callable[[], object]:
            def run() -> object:
                rows = db.execute(page_sql.format(where), values).fetchall()
                ids = [row[0] for row in rows]
                marks = ",".join("?" * len(ids))
                db.execute(
                    f"SELECT run_id, key, value FROM qex_tags WHERE run_id IN ({marks})", ids
                ).fetchall()
                return rows

            return run

        def bare_run() -> object:
            row = db.execute(f"SELECT {COLUMNS} FROM runs WHERE run_id = ?", [run_id]).fetchone()
            db.execute("SELECT * FROM artifacts WHERE run_id = ?", [run_id]).fetchall()
            db.execute("SELECT * FROM qex_tags WHERE run_id = ?", [run_id]).fetchall()
            db.execute("SELECT * FROM qex_notes WHERE run_id = ?", [run_id]).fetchall()
            return np.load(root / row[5])

        cases = {
            "first": ("/", bare_rows("", [])),
            "deep": (
                f"/?before={deep_cursor.replace(',', '%2C')}",
                bare_rows(" WHERE timestamp <= ?", [middle]),
            ),
            "filtered": (
                f"/?e=e3&p=i%3E{threshold}",
                bare_rows(
                    " WHERE experiment_name = ? AND json_extract(params, '$.\"i\"') > ?",
                    ["e3", threshold],
                ),
            ),
            "run": (f"/runs/{run_id}", bare_run),
        }
        ratios = {}
        for name, (path, bare) in cases.items():
            status, body = asgi_get(app, path)
            assert status == 200, (name, status, body[:300])
            served = timings(lambda path=path: asgi_get(app, path), rounds)  # type: ignore[misc]
            raw = timings(bare, rounds)
            ratio = statistics.median(served) / statistics.median(raw)
            ratios[f"{name}_page_ratio"] = round(ratio, 2)
            ratios[f"{name}_page_p50_ms"] = round(1000 * statistics.median(served), 2)
            print(
                f"{name:9} served p50 {1000 * statistics.median(served):7.2f} ms "
                f"p95 {1000 * p(served, 0.95):7.2f} ms | bare SQL p50 "
                f"{1000 * statistics.median(raw):7.2f} ms p95 {1000 * p(raw, 0.95):7.2f} ms "
                f"| ratio {ratio:5.1f}x"
            )
        db.close()
        app.state.served.close()
        print(json.dumps(ratios))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
