"""Pack, verify and import against a one-pass hash-and-store floor; peak memory of each.

    python benchmarks/bundle.py              # 1,000 two-qubit runs, and ~2 GB of 10-qubit runs
    python benchmarks/bundle.py --quick      # 200 two-qubit runs, and ~256 MB of 10-qubit runs
    python benchmarks/bundle.py --smoke      # tiny sizes: checks the script runs, not the speed
    python benchmarks/bundle.py --scale      # 10,000 against 100,000 two-qubit runs (~3 minutes)

The floor reads every payload file once in 1 MiB chunks, hashes it with SHA-256 and writes it
to one output file: the least any packer or importer must do. Pack, verify and import run in
child processes so that each one's peak RSS is its own. Import is also compared with the floor
that writes one file per file, measured just before it in each round, as the disk's speed at
creating files drifts over minutes.
"""

from __future__ import annotations

import argparse
import hashlib
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
from pathlib import Path

import numpy as np

import qex_archive as qa

CHUNK = 1 << 20

CHILD = """
import json, sys, time
import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle
action, archive_dir, bundle = sys.argv[1:4]
start = time.perf_counter()
if action == "pack":
    with qa.open_archive(archive_dir, create=False) as arch:
        pack_bundle(arch, bundle)
elif action == "verify":
    read_bundle(bundle)
else:
    with qa.open_archive(archive_dir) as arch:
        import_bundle(arch, bundle)
elapsed = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak / 1024}))
"""


def make_archive(root: Path, runs: int, qubits: int) -> None:
    """One run recorded for real, then cloned under new IDs (files copied, rows inserted)."""
    rng = np.random.default_rng(0)
    d = 2**qubits
    g = rng.normal(size=(d, 4)) + 1j * rng.normal(size=(d, 4))
    rho = g @ g.conj().T
    with qa.open_archive(root) as arch:
        template = arch.record("bench", params={"i": 0}, backend="sim", state=rho / np.trace(rho))
        row, source = template.row(), template.rho_path
        (size, sha) = arch.conn.execute(
            "SELECT size, sha256 FROM qex_files WHERE path = ?", (row[5],)
        ).fetchone()
        artifacts = [(a.name, a.relative_path, a.media_type, a.path) for a in template.artifacts]
        stored = dict(arch.conn.execute("SELECT path, sha256 FROM qex_files").fetchall())
    conn = sqlite3.connect(root / "qex.db")
    for i in range(1, runs):
        run_id = str(uuid.uuid4())
        rho_path = f"results/{run_id}_rho.npy"
        shutil.copyfile(source, root / rho_path)
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, row[1], json.dumps({"i": i}), row[3], row[4] + i, rho_path, row[6]),
        )
        conn.execute(
            "INSERT INTO qex_files (path, run_id, size, sha256) VALUES (?, ?, ?, ?)",
            (rho_path, run_id, size, sha),
        )
        for name, relative, media, path in artifacts:
            new = f"artifacts/{run_id}_{name}.{relative.rsplit('.', 1)[1]}"
            shutil.copyfile(path, root / new)
            conn.execute(
                "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
                "VALUES (?, ?, ?, ?)",
                (run_id, name, new, media),
            )
            conn.execute(
                "INSERT INTO qex_files (path, run_id, size, sha256) VALUES (?, ?, ?, ?)",
                (new, run_id, path.stat().st_size, stored[relative]),
            )
    conn.commit()
    conn.close()


def tool_floor(root: Path, work: Path) -> tuple[float, float] | None:
    """`zip -0 -qr` plus `sha256sum` of the same files (pack's floor), and `unzip -tq` of
    that ZIP (verify's), when the tools are installed."""
    if not (shutil.which("zip") and shutil.which("sha256sum") and shutil.which("unzip")):
        return None
    files = sorted(
        str(p.relative_to(root)) for sub in ("results", "artifacts") for p in (root / sub).iterdir()
    )
    start = time.perf_counter()
    subprocess.run(
        ["zip", "-0", "-qr", str(work / "floor.zip"), "results", "artifacts"], cwd=root, check=True
    )
    for batch in range(0, len(files), 500):
        subprocess.run(
            ["sha256sum", *files[batch : batch + 500]],
            cwd=root,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    packed = time.perf_counter() - start
    settle()
    start = time.perf_counter()
    subprocess.run(["unzip", "-tq", str(work / "floor.zip")], check=True, stdout=subprocess.DEVNULL)
    tested = time.perf_counter() - start
    (work / "floor.zip").unlink()
    return packed, tested


def floor(root: Path, output: Path) -> float:
    files = sorted(p for sub in ("results", "artifacts") for p in (root / sub).iterdir())
    start = time.perf_counter()
    with output.open("wb") as out:
        for path in files:
            digest = hashlib.sha256()
            with path.open("rb") as stream:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return time.perf_counter() - start


def floor_per_file(root: Path, output: Path) -> float:
    """The same, but each file stored as a file of its own (what an import must create)."""
    files = sorted(p for sub in ("results", "artifacts") for p in (root / sub).iterdir())
    output.mkdir()
    start = time.perf_counter()
    for path in files:
        digest = hashlib.sha256()
        with path.open("rb") as stream, (output / path.name).open("wb") as out:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    os.sync()
    elapsed = time.perf_counter() - start
    shutil.rmtree(output)
    return elapsed


def child(action: str, archive_dir: Path, bundle: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, str(archive_dir), str(bundle)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def settle() -> None:
    """Let the disk finish what earlier steps left (write-back, discards of deleted files):
    file creation on a busy file system can be ten times slower."""
    os.sync()


def measure(label: str, work: Path, runs: int, qubits: int, rounds: int) -> dict[str, float]:
    source = work / f"{label}-source"
    start = time.perf_counter()
    make_archive(source, runs, qubits)
    payload = sum(
        p.stat().st_size for sub in ("results", "artifacts") for p in (source / sub).iterdir()
    )
    print(
        f"{label}: {runs} runs of {qubits} qubits, {payload / 1e6:,.0f} MB payload "
        f"(built in {time.perf_counter() - start:.0f} s)"
    )
    bundle = work / f"{label}.qexb"
    results: dict[str, float] = {}
    floors, per_file, tools, packs, verifies, imports = [], [], [], [], [], []
    paired: list[float] = []  # import / per-file floor, measured back to back
    for round_ in range(rounds):
        settle()
        floors.append(floor(source, work / "floor.bin"))
        (work / "floor.bin").unlink()
        settle()
        tools.append(tool_floor(source, work))
        bundle.unlink(missing_ok=True)  # the floor writes a new file too
        settle()
        packs.append(child("pack", source, bundle))
        settle()
        verifies.append(child("verify", source, bundle))
        settle()
        per_file.append(floor_per_file(source, work / "floor-files"))
        settle()
        target = work / f"{label}-target{round_}"
        imports.append(child("import", target, bundle))
        paired.append(imports[-1]["seconds"] / per_file[-1])
        shutil.rmtree(target)
    best_floor = min(floors)
    print(
        f"  floor: read, SHA-256, write, once  {best_floor:8.2f} s   "
        f"{payload / best_floor / 1e6:7.0f} MB/s"
    )
    best_per_file = min(per_file)
    print(f"  floor, one output file per file    {best_per_file:8.2f} s")
    best_tool = min((t[0] for t in tools if t is not None), default=None)
    best_unzip = min((t[1] for t in tools if t is not None), default=None)
    if best_tool is not None and best_unzip is not None:
        print(f"  zip -0 -qr + sha256sum             {best_tool:8.2f} s")
        print(f"  unzip -tq of that ZIP              {best_unzip:8.2f} s")
    for name, runs_ in (("pack", packs), ("verify", verifies), ("import", imports)):
        seconds = min(r["seconds"] for r in runs_)
        rss = max(r["peak_rss_mb"] for r in runs_)
        target = "1.3x" if name == "pack" else "2x"
        results[f"{label}_{name}_ratio"] = round(seconds / best_floor, 3)
        results[f"{label}_{name}_peak_rss_mb"] = round(rss, 1)
        tool = best_unzip if name == "verify" else best_tool
        tool_name = "unzip -t" if name == "verify" else "zip+sha256sum"
        tool_ratio = f"   vs {tool_name} {seconds / tool:5.2f}x" if tool else ""
        if tool and name != "import":
            results[f"{label}_{name}_over_tools"] = round(seconds / tool, 3)
        if name == "import":
            ratio = statistics.median(paired)
            tool_ratio += f"   vs per-file floor {ratio:5.2f}x (median of pairs)"
            results[f"{label}_import_over_per_file_floor"] = round(ratio, 3)
        print(
            f"  {name:6s} {seconds:8.2f} s   ratio {seconds / best_floor:5.2f}x (<= {target})"
            f"{tool_ratio}   peak RSS {rss:6.1f} MB"
        )
    bundle.unlink()
    shutil.rmtree(source)
    return results


def scale(work: Path, sizes: tuple[int, int]) -> dict[str, float]:
    """Pack, verify and import of two-qubit runs at two sizes, ten times apart: the time
    should grow with the run count (at most 12x for 10x the runs) and the peak RSS not."""
    measured: dict[int, dict[str, dict[str, float]]] = {}
    for runs in sizes:
        source, target, bundle = work / f"scale-{runs}", work / f"scale-{runs}-in", work / "s.qexb"
        start = time.perf_counter()
        make_archive(source, runs, 2)
        print(f"scale: {runs:,} runs built in {time.perf_counter() - start:.0f} s")
        measured[runs] = {}
        for action, archive_dir in (("pack", source), ("verify", source), ("import", target)):
            if action == "import":  # what creating and syncing the same files costs, just before
                settle()
                files = floor_per_file(source, work / "floor-files")
                measured[runs]["floor"] = {"seconds": files, "peak_rss_mb": 0.0}
                print(f"  files  {files:8.2f} s   (floor: create, write and sync the same files)")
            settle()
            measured[runs][action] = child(action, archive_dir, bundle)
            result = measured[runs][action]
            print(
                f"  {action:6s} {result['seconds']:8.2f} s   peak RSS "
                f"{result['peak_rss_mb']:6.1f} MB"
            )
        bundle.unlink()
        shutil.rmtree(source)
        shutil.rmtree(target)
    small, large = sizes
    results: dict[str, float] = {}
    for action in ("pack", "verify", "import"):
        growth = measured[large][action]["seconds"] / measured[small][action]["seconds"]
        peak = measured[large][action]["peak_rss_mb"]
        print(
            f"  {action:6s} {large:,} runs take {growth:5.2f}x the time of {small:,} "
            f"(<= 12x), peak RSS {peak:6.1f} MB (<= 150)"
        )
        results[f"scale_{action}_growth"] = round(growth, 3)
        results[f"scale_{action}_peak_rss_mb"] = round(peak, 1)
    floor_growth = measured[large]["floor"]["seconds"] / measured[small]["floor"]["seconds"]
    print(f"  (creating the files alone: {floor_growth:5.2f}x from {small:,} to {large:,} runs)")
    results["scale_files_floor_growth"] = round(floor_growth, 3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; numbers mean nothing")
    parser.add_argument(
        "--scale", action="store_true", help="only 10,000 against 100,000 two-qubit runs"
    )
    args = parser.parse_args()
    small, large = (20, 2) if args.smoke else (200, 16) if args.quick else (1000, 128)
    work = Path(tempfile.mkdtemp(prefix="qex-bundle-bench-", dir=os.environ.get("QEX_BENCH_DIR")))
    os.environ["QEX_ARCHIVE_LOAD_PLUGINS"] = ""
    try:
        if args.scale:
            results = scale(work, (10_000, 100_000))
        else:
            results = measure("small", work, small, 2, rounds=5)
            results |= measure("large", work, large, 10, rounds=3)
            results |= scale(work, (20, 200) if args.smoke else (1_000, 10_000))
        print(json.dumps(results))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
