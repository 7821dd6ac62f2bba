"""Run IDs: random for users' runs; fixed for the demo (from its seed), given through the
internal ``_run_id`` of ``Archive.record``, which is checked and never collides."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.demo import demo_run_id, fill_demo_archive, remove_demo_runs
from tests.cli_tools import invoke, one_line_error
from tests.conftest import bell_state

FIXED = "0ab9b187-427b-44c2-af50-17e6c5a3f0c1"


def demo_in(folder: Path) -> str:
    """A fresh demo made by the command line in its own process; its `runs --json`."""
    folder.mkdir()

    def qex(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "qex_archive", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    qex("demo")
    return qex("runs", "--all", "--json")


def test_two_fresh_demos_are_the_same_archive(tmp_path: Path) -> None:
    first, second = demo_in(tmp_path / "a"), demo_in(tmp_path / "b")
    assert first == second
    runs = json.loads(first)
    assert len(runs) == 41
    for run in runs:
        assert (
            uuid.UUID(run["run_id"]).version == 4 and str(uuid.UUID(run["run_id"])) == run["run_id"]
        )
    ghz = [r for r in runs if r["experiment_name"] == "ghz_depolarizing"]
    assert FIXED in {r["run_id"] for r in ghz}  # the README's `show` example


def test_demo_ids_and_times_follow_the_seed(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "a") as a, qa.open_archive(tmp_path / "b") as b:
        fill_demo_archive(a)
        fill_demo_archive(b, seed=3)
        ids_a = {run.run_id for run in a.runs(limit=None)}
        ids_b = {run.run_id for run in b.runs(limit=None)}
        assert ids_a == {demo_run_id(2, i) for i in range(41)}
        assert len(ids_b) == 41 and not ids_a & ids_b
        times = sorted(run.timestamp for run in a.runs(limit=None))
        assert 1795683600 <= times[0] < times[-1] < 1795683600 + 41 * 600  # from 2026-11-26 09:00


def test_demo_fresh_replaces_runs_of_the_same_ids_with_their_files(data_dir: Path) -> None:
    """The old runs are deleted and the same IDs recorded in one batch: the files they share
    are the new runs' and are not removed when the batch commits."""
    assert invoke(data_dir, "demo").exit_code == 0
    with qa.open_archive(data_dir) as arch:
        before = {run.run_id: run.timestamp for run in arch.runs(limit=None)}
        with arch.batch():
            assert remove_demo_runs(arch) == 41
            fill_demo_archive(arch)
        assert {run.run_id: run.timestamp for run in arch.runs(limit=None)} == before
        assert arch.get(FIXED).rho.shape == (8, 8)
        assert all(artifact.path.is_file() for artifact in arch.get(FIXED).artifacts)
    assert invoke(data_dir, "check").exit_code == 0


def test_a_failed_batch_keeps_the_old_files_of_the_same_ids(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        fill_demo_archive(arch)
        rho = (data_dir / "results" / f"{FIXED}_rho.npy").read_bytes()
        with pytest.raises(RuntimeError), arch.batch():
            remove_demo_runs(arch)
            fill_demo_archive(arch, now=1e9)  # other times, the same IDs and files
            raise RuntimeError("stop")
        assert (data_dir / "results" / f"{FIXED}_rho.npy").read_bytes() == rho
        assert len(arch.runs(limit=None)) == 41
    assert invoke(data_dir, "check").exit_code == 0


@pytest.mark.parametrize(
    "bad",
    [
        "not a uuid",
        "0AB9B187-427B-44C2-AF50-17E6C5A3F0C1",  # not canonical
        "0ab9b187427b44c2af5017e6c5a3f0c1",
        "0ab9b187-427b-14c2-af50-17e6c5a3f0c1",  # version 1
        "0ab9b187-427b-44c2-0f50-17e6c5a3f0c1",  # not the RFC 4122 variant
        "../../etc/passwd",
    ],
)
def test_a_given_run_id_must_be_a_uuid4(archive: qa.Archive, bad: str) -> None:
    with pytest.raises(qa.InvalidInput, match="not a UUID v4"):
        archive.record("e", backend="b", state=bell_state(), _run_id=bad)
    assert archive.count() == 0 and not any((archive.root / "results").iterdir())


def test_a_given_run_id_that_exists_is_refused(archive: qa.Archive) -> None:
    archive.record("e", backend="b", state=bell_state(), _run_id=FIXED)
    with pytest.raises(qa.InvalidInput, match="already has a run of this ID") as caught:
        archive.record("other", backend="b", state=np.eye(2) / 2, _run_id=FIXED)
    assert "\n" not in str(caught.value)
    assert archive.count() == 1 and archive.get(FIXED).experiment_name == "e"
    assert archive.get(FIXED).rho.shape == (4, 4)  # its file is untouched


def test_a_duplicate_primary_key_is_a_one_line_error(
    archive: qa.Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random IDs that collide (the store's primary key refuses the second)."""
    taken = uuid.UUID(FIXED)
    archive.record("e", backend="b", state=bell_state(), _run_id=FIXED)
    monkeypatch.setattr("qex_archive.recording.prepare.uuid.uuid4", lambda: taken)
    with pytest.raises(qa.QexError, match="a file of that name exists already") as caught:
        archive.record("other", backend="b", state=np.eye(2) / 2)
    assert "\n" not in str(caught.value) and FIXED in str(caught.value)
    assert archive.count() == 1 and archive.get(FIXED).experiment_name == "e"
    run = archive.get(FIXED)  # the first run's files are not written over
    assert run.rho.shape == (4, 4) and all(a.path.is_file() for a in run.artifacts)
    run.verify_density_matrix()


def test_record_on_the_command_line_reports_a_collision_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", backend="b", state=bell_state(), _run_id=FIXED)
    np.save(tmp_path / "rho.npy", bell_state())
    monkeypatch.setattr("qex_archive.recording.prepare.uuid.uuid4", lambda: uuid.UUID(FIXED))
    result = invoke(data_dir, "record", str(tmp_path / "rho.npy"), "-e", "e", "-b", "b")
    one_line_error(result, "a file of that name exists already")


def test_users_runs_still_get_random_ids(archive: qa.Archive) -> None:
    first = archive.record("e", backend="b", state=bell_state())
    second = archive.record("e", backend="b", state=bell_state())
    assert first.run_id != second.run_id and uuid.UUID(first.run_id).version == 4
