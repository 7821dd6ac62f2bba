"""Push and pull through S3 (moto's server on 127.0.0.1) against s3fs moving the same bytes.

    python benchmarks/remote.py            # 1,000 two-qubit runs; 32 ten-qubit runs (~512 MB)
    python benchmarks/remote.py --smoke    # tiny sizes: checks the script runs

- push: ``push`` of every run to an empty remote, against ``s3fs.put_file`` of a bundle of the
  same runs packed beforehand (the raw transfer) plus packing it (target: push <= 1.3x).
- pull: ``pull`` into an empty archive, against ``s3fs.get_file`` of the same bundle plus a
  local import of it (target: pull <= 2x).
Each operation runs in a child process, whose peak memory (VmHWM) is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import qex_archive as qa
from qex_archive.plugins import make_plugin_manager

CHILD = """
import json, sys, time
import qex_archive as qa
from qex_archive.remote.sync import add_remote, pull, push
action, archive, url, endpoint, bundle = sys.argv[1:6]
options = {"endpoint_url": endpoint}
start = time.perf_counter()
if action in ("push", "pull"):
    with qa.open_archive(archive) as arch:
        add_remote(arch, "bench", url, options)
        push(arch, "bench") if action == "push" else pull(arch, "bench")
else:
    import s3fs
    fs = s3fs.S3FileSystem(endpoint_url=endpoint)
    if action == "put":
        with qa.open_archive(archive) as arch:
            qa.pack_bundle(arch, bundle)
        fs.put_file(bundle, url.removeprefix("s3://") + "/raw.qexb")
    else:
        fs.get_file(url.removeprefix("s3://") + "/raw.qexb", bundle)
        with qa.open_archive(archive) as arch:
            qa.import_bundle(arch, bundle)
seconds = time.perf_counter() - start
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024}))
"""


def child(action: str, archive: Path, url: str, endpoint: str, bundle: Path) -> dict[str, float]:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "QEX_ARCHIVE_LOAD_PLUGINS": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, str(archive), url, endpoint, str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fill(root: Path, runs: int, qubits: int) -> None:
    rng = np.random.default_rng(0)
    d = 2**qubits
    pm = make_plugin_manager(load_third_party=False)
    with qa.open_archive(root, plugins=pm, renderers=[], capture=False) as arch, arch.batch():
        for i in range(runs):
            psi = rng.normal(size=d) + 1j * rng.normal(size=d)
            rho = np.outer(psi, psi.conj()) / np.vdot(psi, psi).real
            arch.record("bench", params={"i": i}, backend="sim", state=rho)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        region_name="us-east-1",
    ).create_bucket(Bucket="bench")
    cases = (
        [("small", 20, 2), ("large", 2, 6)]
        if args.smoke
        else [
            ("small", 1000, 2),
            ("large", 32, 10),
        ]
    )
    work = Path(tempfile.mkdtemp(prefix="qex-remote-bench-", dir=os.environ.get("QEX_BENCH_DIR")))
    ratios: dict[str, float] = {}
    try:
        for label, runs, qubits in cases:
            source = work / f"{label}-source"
            fill(source, runs, qubits)
            prefix = f"s3://bench/{label}"
            put = child("put", source, prefix, endpoint, work / f"{label}-raw.qexb")
            pushed = child("push", source, prefix, endpoint, work / "unused")
            got = child(
                "get", work / f"{label}-floor", prefix, endpoint, work / f"{label}-got.qexb"
            )
            pulled = child("pull", work / f"{label}-pulled", prefix, endpoint, work / "unused")
            ratios[f"{label}_push_ratio"] = pushed["seconds"] / put["seconds"]
            ratios[f"{label}_pull_ratio"] = pulled["seconds"] / got["seconds"]
            ratios[f"{label}_push_peak_mb"] = pushed["peak_mb"]
            ratios[f"{label}_pull_peak_mb"] = pulled["peak_mb"]
            print(f"{label}: {runs} runs of {qubits} qubits")
            print(
                f"  push {pushed['seconds']:.2f} s  vs pack + s3fs put {put['seconds']:.2f} s  "
                f"ratio {ratios[f'{label}_push_ratio']:.2f}x (<= 1.3x)  "
                f"peak {pushed['peak_mb']:.0f} MB"
            )
            print(
                f"  pull {pulled['seconds']:.2f} s  vs s3fs get + import {got['seconds']:.2f} s  "
                f"ratio {ratios[f'{label}_pull_ratio']:.2f}x (<= 2x)  "
                f"peak {pulled['peak_mb']:.0f} MB"
            )
        print(json.dumps({key: round(value, 3) for key, value in ratios.items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    main()
