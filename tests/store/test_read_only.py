"""A read-only archive can be read (runs, show, check, pack); every write is refused in one
line that says it is read-only, and nothing changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import read_bundle

from ..conftest import bell_state, snapshot


def _read_only_mount_works() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind / /mnt && mount -o remount,bind,ro /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _read_only_mount_works(), reason="needs root to bind-mount read-only")
def test_a_read_only_archive_can_be_read(tmp_path: Path) -> None:
    data_dir = tmp_path / "ro"
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", params={"shots": 1}, backend="b", state=bell_state())
    before = snapshot(data_dir)
    np.save(tmp_path / "s.npy", np.eye(2) / 2)
    script = f"""
set -u
mount --bind {data_dir} {data_dir} && mount -o remount,bind,ro {data_dir} || exit 99
q() {{ {sys.executable} -m qex_archive --data-dir {data_dir} "$@"; echo "rc=$?"; }}
q runs; q show {run.run_id[:8]}; q check; q pack -o {tmp_path}/out.qexb
q record {tmp_path}/s.npy -e x -b b; q gc; q rm {run.run_id[:8]} --yes
q import {tmp_path}/out.qexb; q render {run.run_id[:8]}
"""
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert done.returncode != 99, done.stderr
    codes = [line for line in done.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=0"] * 4 + ["rc=1"] * 5, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    refusals = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(refusals) == 5 and all("read-only" in line for line in refusals), refusals
    assert read_bundle(tmp_path / "out.qexb").runs[0]["run_id"] == run.run_id
    assert snapshot(data_dir) == before
