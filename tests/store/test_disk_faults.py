"""Faults of the disk and the database: a failing fsync, rename, create or COMMIT is a one-line
error naming its cause, and leaves the archive as it was; a file that cannot be removed after a
delete is left for gc."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle
from qex_archive.store import files as storage
from qex_archive.store.integrity import check_archive, collect_garbage

from ..conftest import bell_state, snapshot
from ..faults import fail_with as _fail_with


class _FailingConnection:
    """The archive's connection, whose COMMIT fails as a full disk makes it fail."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


Operation = Callable[[qa.Archive, Path], object]


def _record(arch: qa.Archive, tmp_path: Path) -> object:
    return arch.record("new", backend="b", state=np.eye(4) / 4)


def _batch(arch: qa.Archive, tmp_path: Path) -> object:
    with arch.batch():
        for i in range(3):
            arch.record("new", params={"i": i}, backend="b", state=np.eye(4) / 4)
    return None


def _render(arch: qa.Archive, tmp_path: Path) -> object:
    return arch.render(arch.runs(experiment="kept")[0].run_id)


def _delete(arch: qa.Archive, tmp_path: Path) -> object:
    return arch.delete(arch.runs(experiment="kept")[0].run_id)


def _import(arch: qa.Archive, tmp_path: Path) -> object:
    return import_bundle(arch, tmp_path / "source.qexb")


OPERATIONS: dict[str, Operation] = {
    "record": _record,
    "batch": _batch,
    "render": _render,
    "delete": _delete,
    "import": _import,
}


FAULTS = {
    "fsync": ("fsync", errno.ENOSPC, "the disk is full"),
    "rename": ("replace", errno.EIO, "input/output error"),
    "create": ("open", errno.ENOSPC, "the disk is full"),
}


def _failing_at(original: Callable[..., object], nth: int, error: int) -> Callable[..., object]:
    """``original``, except that its ``nth`` call fails with ``error``."""
    seen = {"n": 0}

    def failing(*args: object, **kwargs: object) -> object:
        seen["n"] += 1
        if seen["n"] == nth:
            raise OSError(error, os.strerror(error))
        return original(*args, **kwargs)

    return failing


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str, run: Callable[[], object]) -> int:
    original = getattr(os, name)
    calls = {"n": 0}

    def counting(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(os, name, counting)
    try:
        run()
    finally:
        monkeypatch.setattr(os, name, original)
    return calls["n"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("operation", sorted(set(OPERATIONS) - {"delete"}))  # writes no file
def test_a_failing_disk_is_a_one_line_error_that_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str, fault: str
) -> None:
    with qa.open_archive(tmp_path / "src") as source:
        source.record("imported", backend="b", state=bell_state())
        pack_bundle(source, tmp_path / "source.qexb")
    name, error, words = FAULTS[fault]
    rehearsal = tmp_path / "rehearsal"
    with qa.open_archive(rehearsal) as arch:
        arch.record("kept", backend="b", state=bell_state())
        calls = _count_calls(monkeypatch, name, lambda: OPERATIONS[operation](arch, tmp_path))
    refused = 0
    for nth in range(1, calls + 1):
        target = tmp_path / f"target-{nth}"
        with qa.open_archive(target) as arch:
            arch.record("kept", backend="b", state=bell_state())
            before = snapshot(target)
            original = getattr(os, name)
            failing = _failing_at(original, nth, error)
            monkeypatch.setattr(os, name, failing)
            try:
                OPERATIONS[operation](arch, tmp_path)
            except qa.QexError as exc:
                message = str(exc)
                assert "\n" not in message and words in message, message
                assert "QEX-B" not in message  # the disk's fault, not the bundle's
                refused += 1
                monkeypatch.setattr(os, name, original)
                assert snapshot(target) == before, (operation, fault, nth)
            else:
                monkeypatch.setattr(os, name, original)  # a call whose failure is harmless
            assert [f for f in check_archive(arch) if f.severity == "error"] == []
    assert refused, f"no {name} failure reached {operation}"


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_failing_commit_is_a_one_line_error_that_leaves_nothing_behind(
    tmp_path: Path, operation: str
) -> None:
    with qa.open_archive(tmp_path / "src") as source:
        source.record("imported", backend="b", state=bell_state())
        pack_bundle(source, tmp_path / "source.qexb")
    with qa.open_archive(tmp_path / "target") as arch:
        arch.record("kept", backend="b", state=bell_state())
        before = snapshot(arch.root)
        real = arch.conn
        arch.conn = _FailingConnection(real)  # type: ignore[assignment]
        with pytest.raises(qa.QexError, match="the disk is full"):
            OPERATIONS[operation](arch, tmp_path)
        arch.conn = real
        assert snapshot(arch.root) == before
        assert check_archive(arch) == []


def test_a_file_that_cannot_be_unlinked_after_a_delete_is_left_for_gc(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        monkeypatch.setattr(Path, "unlink", _fail_with(errno.EIO))
        arch.delete(run.run_id)
        monkeypatch.undo()
        assert arch.count() == 0
        assert {f.code for f in check_archive(arch)} == {"QEX-C005"}
        collect_garbage(arch)
        assert check_archive(arch) == []


def test_storage_failures_name_their_cause() -> None:
    for error, words in [
        (errno.ENOSPC, "disk is full"),
        (errno.EROFS, "read-only"),
        (errno.EIO, "input/output error"),
    ]:
        assert words in storage.failure_reason(OSError(error, os.strerror(error)))
    locked = storage.failure_reason(sqlite3.OperationalError("database is locked"))
    assert "locked by another process for 60 s" in locked
