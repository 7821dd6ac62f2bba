"""Staged files made durable together, and what happens when the disk cannot flush them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle
from qex_archive.store import files as storage
from qex_archive.store.files import StagingDirectory

from ..conftest import bell_state, snapshot


def test_staged_files_are_new_files_only(tmp_path: Path) -> None:
    with StagingDirectory(tmp_path) as staged:
        with staged.create("a.npy") as stream:
            stream.write(b"x")
        with pytest.raises(FileExistsError):
            staged.create("a.npy")
        staged.sync()
    assert (tmp_path / "a.npy").read_bytes() == b"x"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_linux_flushes_the_file_system_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsynced: list[Path] = []
    monkeypatch.setattr(storage, "fsync_path", fsynced.append)
    assert storage._syncfs_function() is not None
    with StagingDirectory(tmp_path) as staged:
        for name in ("a", "b", "c"):
            staged.create(name).close()
        staged.sync()
    assert fsynced == [tmp_path]  # the directory, for the names; the files by one syncfs


def test_without_syncfs_every_file_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsynced: list[Path] = []
    monkeypatch.setattr(storage, "fsync_path", fsynced.append)
    monkeypatch.setattr(storage, "_syncfs_function", lambda: None)
    with StagingDirectory(tmp_path) as staged:
        for name in ("a", "b", "c"):
            staged.create(name).close()
        staged.sync()
    assert sorted(fsynced) == [tmp_path, tmp_path / "a", tmp_path / "b", tmp_path / "c"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="syncfs(2) is Linux's")
def test_a_batch_makes_its_files_durable_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    with qa.open_archive(tmp_path / "a") as arch:
        synced: list[int] = []
        real_fsync, real_syncfs = os.fsync, storage._syncfs
        monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
        calls: list[int] = []
        monkeypatch.setattr(storage, "_syncfs", lambda fd: calls.append(fd) or real_syncfs(fd))
        with arch.batch():
            for i in range(10):
                arch.record("e", params={"i": i}, backend="b", state=bell_state())
            assert synced == [] and calls == []  # nothing flushed while the batch runs
        assert len(calls) == 1 and len(synced) == 2  # one syncfs; results/ and artifacts/
        monkeypatch.undo()
        assert arch.count() == 10


def test_an_import_the_disk_cannot_flush_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with qa.open_archive(tmp_path / "source") as source:
        source.record("e", backend="b", state=bell_state())
        pack_bundle(source, tmp_path / "b.qexb")
    with qa.open_archive(tmp_path / "target") as target:
        target.record("kept", backend="b", state=bell_state())
        before = snapshot(tmp_path / "target")
        monkeypatch.setattr(storage, "_syncfs_function", lambda: lambda fd: -1)
        with pytest.raises(qa.ArchiveError, match="cannot stage the bundle's files: cannot flush"):
            import_bundle(target, tmp_path / "b.qexb")
        assert snapshot(tmp_path / "target") == before
        monkeypatch.undo()
        assert len(import_bundle(target, tmp_path / "b.qexb").imported) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
@pytest.mark.parametrize("early", [False, True], ids=["at the end", "matrix early"])
@pytest.mark.parametrize("renderers", [None, []], ids=["with its page", "matrix alone"])
def test_a_record_flushes_its_files_and_their_directories_before_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renderers: list[str] | None, early: bool
) -> None:
    # a large matrix is flushed on a thread while the run is computed (here any matrix, when
    # early); the rest together at the end
    import os
    import sqlite3
    import threading

    from qex_archive import archive as archive_module

    if early:
        monkeypatch.setattr(archive_module, "EARLY_FLUSH_BYTES", 0)
    started: list[list[Path]] = []
    start_fsyncs = storage._start_fsyncs
    monkeypatch.setattr(
        storage, "_start_fsyncs", lambda paths: started.append(paths) or start_fsyncs(paths)
    )

    with qa.open_archive(tmp_path / "a") as arch:
        root = arch.root
        real_fsync = os.fsync
        flushed: dict[Path, int] = {}
        lock = threading.Lock()

        def fsync(fd: int) -> None:
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if storage.is_temp_name(path.name):  # a file flushed before it got its name
                path = path.with_name(path.name.split("-", 3)[3])
            with sqlite3.connect(root / "qex.db") as reader:  # what another process sees
                runs = reader.execute("SELECT count(*) FROM runs").fetchone()[0]
            with lock:
                flushed[path] = runs
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        run = arch.record("e", backend="b", state=bell_state(), renderers=renderers)
        monkeypatch.undo()
        files = {root / run.density_matrix_path, *(root / a.path for a in run.artifacts)}
        assert len(files) == (2 if renderers is None else 1)
        assert flushed == dict.fromkeys({*files, *(path.parent for path in files)}, 0)
        assert arch.count() == 1
        assert len(started) == (1 if early else 0)  # the matrix alone, under its temporary name
        assert all(storage.is_temp_name(path.name) for paths in started for path in paths)


@pytest.mark.parametrize("before_exit", [0, 1])
def test_a_run_recorded_while_the_interpreter_exits_is_stored(
    tmp_path: Path, before_exit: int
) -> None:
    """No thread may start once Python is exiting; an atexit handler still records."""
    import subprocess

    script = (
        "import atexit, sys\n"
        "import numpy as np\n"
        "import qex_archive as qa\n"
        "arch = qa.open_archive(sys.argv[1])\n"
        f"for i in range({before_exit}):\n"
        "    arch.record('before', backend='b', state=np.eye(2) / 2)\n"
        "atexit.register(lambda: arch.record('at exit', backend='b', state=np.eye(2) / 2))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a")], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    with qa.open_archive(tmp_path / "a") as arch:
        names = [run.experiment_name for run in arch.runs()]
        assert sorted(names) == ["at exit"] + ["before"] * before_exit


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_records_with_threads_of_its_own(tmp_path: Path) -> None:
    import subprocess

    script = (
        "import os, sys\n"
        "import numpy as np\n"
        "import qex_archive as qa\n"
        "with qa.open_archive(sys.argv[1]) as arch:\n"
        "    arch.record('parent', backend='b', state=np.eye(2) / 2)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    with qa.open_archive(sys.argv[1]) as arch:\n"
        "        arch.record('child', backend='b', state=np.eye(2) / 2)\n"
        "    os._exit(0)\n"
        "sys.exit(os.waitpid(pid, 0)[1])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    with qa.open_archive(tmp_path / "a") as arch:
        assert sorted(run.experiment_name for run in arch.runs()) == ["child", "parent"]
