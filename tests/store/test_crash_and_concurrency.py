"""A writer killed at any point leaves at most orphan files; concurrent writers all succeed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.store.integrity import check_archive, collect_garbage

from ..kill_points import PRELUDE

pytestmark = pytest.mark.slow

# The child records three runs that must survive, then starts the interrupted operation.
# Each scenario swaps in a function that announces the point it reached and then waits
# to be killed, so the kill lands exactly there.
CHILD = PRELUDE + textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import qex_archive as qa
    from qex_archive.store import files as storage, writer as writer_module

    data_dir, point = sys.argv[1], sys.argv[2]

    arch = qa.open_archive(data_dir)
    for i in range(3):
        rho = np.diag([1.0, 0.0, 0.0, 0.0]).astype(complex)
        rho[0, 0], rho[i + 1, i + 1] = 0.5, 0.5
        arch.record("kept", params={"i": i}, backend="b", state=rho)
    print("COMMITTED", flush=True)

    state = np.eye(4) / 4
    if point == "before-rename":
        storage.os.replace = stop_here
        arch.record("doomed", backend="b", state=state)
    elif point == "written-unnamed":  # the matrix, written before the write lock is held
        storage.write_unnamed = after(storage.write_unnamed)
        arch.record("doomed", backend="b", state=state)
    elif point == "after-rename":  # the files named, under the write lock; no rows yet
        storage.PendingFiles.publish = after(storage.PendingFiles.publish)
        arch.record("doomed", backend="b", state=state)
    elif point == "before-commit":
        arch._store = after(arch._store)
        arch.record("doomed", backend="b", state=state)
    elif point == "files-synced":
        storage.PendingFiles.flush = after(storage.PendingFiles.flush)
        arch.record("doomed", backend="b", state=state)
    elif point == "mid-batch":
        count = {"n": 0}
        original = arch._store
        def store(prepared, **options):
            original(prepared, **options)
            count["n"] += 1
            if count["n"] == 5:
                stop_here()
        arch._store = store
        with arch.batch():
            for i in range(10):
                arch.record("doomed", params={"i": i}, backend="b", state=state)
    elif point == "delete-before-unlink":
        writer_module.remove_data_file = stop_here
        arch.delete(arch.runs(where={"i": 2})[0].run_id)
    elif point == "after-commit":
        arch.record("late", backend="b", state=state)
        stop_here()
    elif point == "render-replaced":  # the new page renamed over the old; no commit yet
        run = arch.runs(where={"i": 2})[0]
        run.set_tag("figure", "x")  # the page shows tags: the new page differs from the old
        storage.PendingFiles._replace = after(storage.PendingFiles._replace)
        arch.render(run.run_id)
    elif point == "render-before-commit":
        arch._insert_artifacts = after(arch._insert_artifacts)
        arch.render(arch.runs(where={"i": 2})[0].run_id)
    elif point == "render-after-commit":  # the page replaced; its old file not yet removed
        storage.PendingFiles.committed = stop_here
        arch.render(arch.runs(where={"i": 2})[0].run_id)
    """
)

POINTS = [
    "written-unnamed",
    "before-rename",
    "after-rename",
    "before-commit",
    "files-synced",
    "mid-batch",
    "delete-before-unlink",
    "after-commit",
    "render-before-commit",
    "render-replaced",
    "render-after-commit",
]


def expected_kept(i: int) -> np.ndarray:
    rho = np.zeros((4, 4), dtype=complex)
    rho[0, 0] = rho[i + 1, i + 1] = 0.5
    return rho


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_writer_leaves_at_most_orphans(data_dir: Path, point: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "COMMITTED"
    assert child.stdout.readline().strip() == "REACHED", child.stderr.read() if child.stderr else ""
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    with qa.open_archive(data_dir, create=False) as arch:
        findings = check_archive(arch)
        # killed between the rename and the commit, the page's new bytes are under its old
        # checksum: check says so, and gc puts the old page back
        changed = {"QEX-C002", "QEX-C003"} if point == "render-replaced" else set()
        assert {f.code for f in findings} <= {"QEX-C005", "QEX-C006", *changed}, findings
        if point in (
            "written-unnamed",
            "before-rename",
            "after-rename",
            "before-commit",
            "mid-batch",
            "delete-before-unlink",
            "render-before-commit",
            "render-replaced",
            "render-after-commit",
        ):
            assert findings, "the interrupted write should have left a file behind"
        collect_garbage(arch)
        assert check_archive(arch) == []

        names = sorted(r.experiment_name for r in arch.runs())
        kept = {r.params["i"]: r for r in arch.runs(experiment="kept")}
        if point == "delete-before-unlink":
            assert sorted(kept) == [0, 1]  # the delete committed; only its files were left
        else:
            assert sorted(kept) == [0, 1, 2]
        for i, run in kept.items():
            np.testing.assert_array_equal(run.rho, expected_kept(i))
            (page,) = run.artifacts  # a render killed anywhere leaves the old page or the new
            assert page.name == "bloch" and page.path.is_file()
        assert "doomed" not in names
        if point == "after-commit":
            late = arch.runs(experiment="late")[0]
            np.testing.assert_array_equal(late.rho, np.eye(4) / 4)


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    import qex_archive as qa
    data_dir, worker = sys.argv[1], int(sys.argv[2])
    with qa.open_archive(data_dir) as arch:
        for i in range(250):
            arch.record("concurrent", params={"worker": worker, "i": i}, backend="b",
                        state=np.eye(4) / 4)
    print("DONE", worker)
    """
)


def test_four_processes_record_250_runs_each(data_dir: Path) -> None:
    # The archive does not exist yet: creating it concurrently is part of the test.
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(data_dir), str(worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    for worker, proc in enumerate(writers):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == f"DONE {worker}"
    with qa.open_archive(data_dir, create=False) as arch:
        assert arch.count() == 1000
        for worker in range(4):
            params = [
                r.params["i"] for r in arch.runs(where={"worker": worker}, newest_first=False)
            ]
            assert sorted(params) == list(range(250))
        assert check_archive(arch) == []


def created_first(*names: str) -> Callable[[object], bool]:
    """``os.path.lexists``, except that a directory ending in one of ``names`` that does not
    exist yet is created by "another process" just after the look: the race to create it."""
    exists = os.path.lexists

    def lexists(path: object) -> bool:
        found = exists(path)  # type: ignore[arg-type]
        if not found and str(path).endswith(names):
            os.makedirs(str(path))  # the other process wins the race
        return found

    return lexists


def test_a_new_archive_opened_by_several_processes_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may create results/ or artifacts/ between the look and the mkdir."""
    from qex_archive import opening

    monkeypatch.setattr(opening.os.path, "lexists", created_first("results", "artifacts"))
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=np.eye(2) / 2)
    monkeypatch.undo()
    with qa.open_archive(tmp_path / "a") as arch:
        assert arch.count() == 1


def test_two_imports_that_both_create_the_staging_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qex_archive.bundle import import_bundle, importer, pack_bundle

    with qa.open_archive(tmp_path / "source") as source:
        source.record("e", backend="b", state=np.eye(2) / 2)
        pack_bundle(source, tmp_path / "b.qexb")
    with qa.open_archive(tmp_path / "target") as target:
        monkeypatch.setattr(importer.os.path, "lexists", created_first(".staging"))
        import_bundle(target, tmp_path / "b.qexb")
        monkeypatch.undo()
        assert target.count() == 1
        assert check_archive(target) == []
