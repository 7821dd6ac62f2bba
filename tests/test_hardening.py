"""Hand-made rows, odd file systems, hostile values and failing disks: qex either does the job
or says in one line why not, and nothing that was there before is lost, changed or touched
outside the archive."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle
from qex_archive.bundle.format import DESCRIPTION
from qex_archive.cli import cli
from qex_archive.store import files as storage
from qex_archive.store.integrity import check_archive, collect_garbage

from .bundle_tools import read_members, rebag, write_zip
from .conftest import bell_state, snapshot

FOREIGN_ID = "0a0b0c0d-0000-4000-8000-00000000f00d"


def invoke(data_dir: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


def one_line_error(result: object, *fragments: str) -> None:
    assert result.exit_code == 1, result.output  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    lines = result.output.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("Error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def add_row(data_dir: Path, run_id: str, rho_path: str, *, artifact: str | None = None) -> None:
    """A run written by another tool, straight into the seed tables."""
    conn = sqlite3.connect(data_dir / "qex.db")
    with conn:
        conn.execute(
            "INSERT INTO runs VALUES (?, 'handmade', '{}', 'b', 1.7e9, ?, NULL)",
            (run_id, rho_path),
        )
        if artifact is not None:
            conn.execute(
                "INSERT INTO artifacts (run_id, artifact_name, artifact_path, artifact_type) "
                "VALUES (?, 'page', ?, 'text/html')",
                (run_id, artifact),
            )
    conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """An archive with one real run, and sentinel files beside and above it."""
    data_dir = tmp_path / "nest" / "qex_data"
    with qa.open_archive(data_dir) as arch:
        arch.record("real", backend="b", state=bell_state())
    beside = tmp_path / "nest" / "beside.npy"
    np.save(beside, np.eye(2, dtype=complex) / 2)
    above = tmp_path / "above.npy"
    above.write_bytes(beside.read_bytes())
    return {"data": data_dir, "beside": beside, "above": above}


ROW_PATHS = {
    "the database itself": ("qex.db", "QEX-C010"),
    "a parent directory": ("../beside.npy", "QEX-C010"),
    "an absolute path": ("{above}", "QEX-C010"),
    "a directory": ("results/sub", "QEX-C015"),
    "a backslash path": ("results\\..\\qex.db", "QEX-C010"),
    "a temporary name": ("results/.tmp-1-x_rho.npy", "QEX-C010"),
}


@pytest.mark.parametrize("case", sorted(ROW_PATHS))
def test_a_row_cannot_make_qex_touch_a_file_that_is_not_its_own(
    world: dict[str, Path], tmp_path: Path, case: str
) -> None:
    data_dir = world["data"]
    path, code = ROW_PATHS[case]
    path = path.format(above=world["above"])
    (data_dir / "results" / "sub").mkdir()
    add_row(data_dir, FOREIGN_ID, path)
    protected = {p: digest(p) for p in (world["beside"], world["above"], data_dir / "qex.db")}

    checked = invoke(data_dir, "check", "--json")
    assert checked.exit_code == 1
    codes = {(f["code"], f["run_id"]) for f in json.loads(checked.output)["findings"]}
    assert (code, FOREIGN_ID) in codes
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb"), FOREIGN_ID[:8]))
    assert not (tmp_path / "x.qexb").exists()
    one_line_error(invoke(data_dir, "render", FOREIGN_ID[:8], "--force"))
    with qa.open_archive(data_dir) as arch, pytest.raises(qa.ArchiveError):
        _ = arch.get(FOREIGN_ID).rho
    assert invoke(data_dir, "show", FOREIGN_ID[:8]).exit_code == 0
    assert invoke(data_dir, "rm", FOREIGN_ID[:8], "--yes").exit_code == 0
    assert invoke(data_dir, "gc").exit_code == 0
    for sentinel, before in protected.items():
        if sentinel.name != "qex.db":
            assert digest(sentinel) == before
    assert (data_dir / "qex.db").is_file() and (data_dir / "results" / "sub").is_dir()
    with qa.open_archive(data_dir) as arch:
        assert [r.experiment_name for r in arch.runs()] == ["real"]


def test_rm_keeps_a_file_another_run_still_refers_to(world: dict[str, Path]) -> None:
    data_dir = world["data"]
    with qa.open_archive(data_dir) as arch:
        real = arch.runs()[0]
    add_row(data_dir, FOREIGN_ID, real.density_matrix_path)
    findings = {(f.code, f.path) for f in check_archive(qa.open_archive(data_dir))}
    assert ("QEX-C016", real.density_matrix_path) in findings
    assert invoke(data_dir, "rm", FOREIGN_ID[:8], "--yes").exit_code == 0
    with qa.open_archive(data_dir) as arch:
        np.testing.assert_allclose(arch.get(real.run_id).rho, bell_state())
        assert check_archive(arch) == []


def test_a_linked_results_directory_is_never_followed(
    world: dict[str, Path], tmp_path: Path
) -> None:
    data_dir = world["data"]
    elsewhere = tmp_path / "elsewhere"
    shutil.move(data_dir / "results", elsewhere)
    unrelated = elsewhere / "unrelated_rho.npy"
    shutil.copy(world["beside"], unrelated)
    (data_dir / "results").symlink_to(elsewhere)
    before = digest(unrelated)

    assert invoke(data_dir, "gc").exit_code == 0
    assert unrelated.exists() and digest(unrelated) == before
    checked = json.loads(invoke(data_dir, "check", "--json").output)
    assert {"QEX-C017"} <= {f["code"] for f in checked["findings"]}
    np.save(tmp_path / "s.npy", np.eye(2) / 2)
    one_line_error(
        invoke(data_dir, "record", str(tmp_path / "s.npy"), "-e", "x", "-b", "b"),
        "results/ is a symbolic link",
    )
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb")))
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(
        [unrelated.name, *(p.name for p in elsewhere.iterdir() if p != unrelated)]
    )


def test_a_linked_density_matrix_is_not_read_packed_or_deleted(
    world: dict[str, Path], tmp_path: Path
) -> None:
    data_dir = world["data"]
    with qa.open_archive(data_dir) as arch:
        real = arch.runs()[0]
    stored = data_dir / real.density_matrix_path
    stored.unlink()
    stored.symlink_to(world["above"])
    before = digest(world["above"])
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb")), "symbolic link")
    assert not (tmp_path / "x.qexb").exists()
    codes = {f["code"] for f in json.loads(invoke(data_dir, "check", "--json").output)["findings"]}
    assert "QEX-C015" in codes
    assert invoke(data_dir, "rm", real.run_id[:8], "--yes").exit_code == 0
    assert invoke(data_dir, "gc").exit_code == 0
    assert digest(world["above"]) == before and stored.is_symlink()


# -- bundles that verify must import, and verify must refuse what import would fail on ----


@pytest.fixture
def bundle_members(tmp_path: Path) -> dict[str, bytes]:
    with qa.open_archive(tmp_path / "src") as arch:
        arch.record("e", params={"shots": 1}, backend="b", state=bell_state())
        pack_bundle(arch, tmp_path / "ok.qexb")
    return read_members(tmp_path / "ok.qexb")


def described(members: dict[str, bytes], change: Callable[[dict], None]) -> dict[str, bytes]:  # type: ignore[type-arg]
    value = json.loads(members[DESCRIPTION])
    change(value)
    text = json.dumps(value, ensure_ascii=True)
    return rebag({**members, DESCRIPTION: text.encode()})


def set_param(value: dict) -> None:  # type: ignore[type-arg]
    value["runs"][0]["params"]["label"] = "\ud800"


def set_timestamp(value: dict) -> None:  # type: ignore[type-arg]
    value["runs"][0]["timestamp"] = int("9" * 401)


def set_dims(value: dict) -> None:  # type: ignore[type-arg]
    value["runs"][0]["metadata"]["state"]["dims"] = [2, 2, 2]


def set_shape(value: dict) -> None:  # type: ignore[type-arg]
    value["runs"][0]["metadata"]["state"]["shape"] = [8, 8]


def set_dtype(value: dict) -> None:  # type: ignore[type-arg]
    value["runs"][0]["metadata"]["state"]["dtype"] = "float64"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (set_param, "QEX-B020"),
        (set_timestamp, "QEX-B023"),
        (set_dims, "QEX-B023"),
        (set_shape, "QEX-B023"),
        (set_dtype, "QEX-B023"),
    ],
)
def test_verify_refuses_what_import_would_fail_on(
    bundle_members: dict[str, bytes],
    tmp_path: Path,
    change: Callable[[dict], None],
    code: str,  # type: ignore[type-arg]
) -> None:
    bundle = write_zip(tmp_path / "bad.qexb", described(bundle_members, change))
    with pytest.raises(qa.BundleError) as caught:
        read_bundle(bundle)
    assert caught.value.code == code
    with qa.open_archive(tmp_path / "target") as target:
        target.record("kept", backend="b", state=bell_state())
        before = snapshot(target.root)
        with pytest.raises(qa.BundleError) as again:
            import_bundle(target, bundle)
        assert again.value.code == code
        assert snapshot(target.root) == before


def test_import_is_all_or_nothing_under_any_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with qa.open_archive(tmp_path / "src") as arch:
        for i in range(3):
            arch.record("e", params={"i": i}, backend="b", state=bell_state())
        pack_bundle(arch, tmp_path / "b.qexb")
    from qex_archive.store import tables

    def broken(*args: object) -> None:
        raise RuntimeError("an unexpected bug")

    with qa.open_archive(tmp_path / "target") as target:
        target.record("kept", backend="b", state=bell_state())
        before = snapshot(target.root)
        monkeypatch.setattr(tables, "insert_imports", broken)
        with pytest.raises(RuntimeError):
            import_bundle(target, tmp_path / "b.qexb")
        assert snapshot(target.root) == before
        monkeypatch.undo()
        assert len(import_bundle(target, tmp_path / "b.qexb").imported) == 3
        assert check_archive(target) == []


def test_an_artifact_named_like_the_density_matrix_imports(
    bundle_members: dict[str, bytes], tmp_path: Path
) -> None:
    """``data/artifacts/{id}_rho.npy`` and ``data/results/{id}_rho.npy`` share a base name."""
    value = json.loads(bundle_members[DESCRIPTION])
    run = value["runs"][0]
    content = b"an artifact that happens to be called rho"
    name = f"data/artifacts/{run['run_id']}_rho.npy"
    run["artifacts"].append(
        {
            "name": "rho",
            "media_type": "application/x-npy",
            "path": name,
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    )
    members = rebag({**bundle_members, name: content, DESCRIPTION: json.dumps(value).encode()})
    bundle = write_zip(tmp_path / "rho.qexb", members)
    with qa.open_archive(tmp_path / "target") as target:
        assert import_bundle(target, bundle).imported == [run["run_id"]]
        imported = target.get(run["run_id"])
        assert (target.root / f"artifacts/{run['run_id']}_rho.npy").read_bytes() == content
        np.testing.assert_allclose(imported.rho, bell_state())
        assert check_archive(target) == []


def test_a_bundle_file_name_that_is_not_utf8_imports(tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "src") as arch:
        arch.record("e", backend="b", state=bell_state())
        pack_bundle(arch, tmp_path / "b.qexb")
    odd = Path(os.fsdecode(bytes(tmp_path / "b.qexb")[:-6] + b"\xff\xfe.qexb"))
    shutil.copy(tmp_path / "b.qexb", odd)
    result = invoke(tmp_path / "target", "import", str(odd))
    assert result.exit_code == 0, result.output
    shown = invoke(tmp_path / "target", "show", "--json", read_bundle(odd).runs[0]["run_id"])
    assert json.loads(shown.output)["imported_from"]["source_name"] == "\\xff\\xfe.qexb"


# -- record: values every later command can handle ------------------------------------------


def test_record_normalises_state_vectors_without_overflow(archive: qa.Archive) -> None:
    run = archive.record("e", backend="b", state=np.array([1e200, 0]))
    np.testing.assert_array_equal(run.rho, np.diag([1, 0]).astype(complex))
    assert run.state_info["source_norm"] == 1e200 and run.validation["is_valid"]
    tiny = archive.record("e", backend="b", state=np.array([3e-200, 4e-200j]))
    assert tiny.validation["is_valid"] and abs(tiny.rho[1, 1] - 0.64) < 1e-12
    with pytest.raises(qa.InvalidState, match="zero"):
        archive.record("e", backend="b", state=[0, 0])


def test_record_refuses_what_overflows_complex128(archive: qa.Archive) -> None:
    huge = np.array([[np.longdouble("1e400"), 0], [0, 0]])
    if not np.isfinite(huge).all():
        pytest.skip("this platform's long double is a double")
    with pytest.raises(qa.InvalidState, match="too large for complex128"):
        archive.record("e", backend="b", state=huge)
    assert archive.count() == 0


@pytest.mark.parametrize("when", [1e300, -1e300, -3e9, 2.6e11, "9999999-01-01"])
def test_record_refuses_timestamps_no_command_can_show(archive: qa.Archive, when: object) -> None:
    with pytest.raises(qa.InvalidInput, match="timestamp"):
        archive.record("e", backend="b", state=bell_state(), timestamp=when)
    assert archive.count() == 0


def test_pack_refuses_one_bad_run_by_name(tmp_path: Path, data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        good = arch.record("e", backend="b", state=bell_state())
        bad = arch.record("e", backend="b", state=bell_state())
        arch.conn.execute("UPDATE runs SET timestamp = 1e300 WHERE run_id = ?", (bad.run_id,))
    one_line_error(invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb")), bad.run_id)
    assert invoke(data_dir, "pack", "-o", str(tmp_path / "x.qexb"), good.run_id).exit_code == 0
    codes = {f["code"] for f in json.loads(invoke(data_dir, "check", "--json").output)["findings"]}
    assert "QEX-C014" in codes


def test_check_compares_the_state_summary_with_the_file(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        metadata = run.metadata
        assert metadata is not None
        metadata["state"]["dims"] = [4]
        metadata["state"]["shape"] = [2, 2]
        arch.conn.execute(
            "UPDATE runs SET metadata = ? WHERE run_id = ?", (json.dumps(metadata), run.run_id)
        )
        findings = check_archive(arch)
    assert [(f.code, f.run_id) for f in findings] == [("QEX-C018", run.run_id)]


# -- faults of the disk and the database ----------------------------------------------------


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


def _fail_with(error: int) -> Callable[..., None]:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(error, os.strerror(error))

    return fail


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


# -- render swaps artifacts in one transaction ----------------------------------------------


def test_render_refuses_a_changed_density_matrix_unless_forced(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
    path = data_dir / run.density_matrix_path
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    one_line_error(
        invoke(data_dir, "render", run.run_id[:8]), "QEX-C003", "run 'qex-archive check'"
    )
    assert invoke(data_dir, "render", run.run_id[:8], "--force").exit_code == 0


@pytest.mark.parametrize("damage", [b"", b"\x93NUMPY\x01\x00v\x00{'descr'"])
def test_render_of_an_empty_or_truncated_matrix_is_one_line(data_dir: Path, damage: bytes) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
    (data_dir / run.density_matrix_path).write_bytes(damage)
    one_line_error(invoke(data_dir, "render", run.run_id[:8], "--force"), run.density_matrix_path)


def test_render_replaces_the_page_under_its_seed_name_and_keeps_it_if_that_fails(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record("e", backend="b", state=bell_state())
        (old,) = run.artifacts
        before, before_page = snapshot(data_dir), old.path.read_bytes()
        monkeypatch.setattr(arch, "_insert_artifacts", _fail_with(errno.EIO))
        with pytest.raises(qa.QexError):
            arch.render(run.run_id)
        assert snapshot(data_dir) == before
        monkeypatch.undo()
        run.set_tag("selected", "xyzzy")  # the page shows the run's tags: the new page differs
        (new,) = arch.render(run.run_id)
        # the seed's name, replaced in place: no second name, no temporary file left
        assert new.relative_path == old.relative_path == f"artifacts/{run.run_id}_bloch.html"
        assert sorted(p.name for p in (data_dir / "artifacts").iterdir()) == [old.path.name]
        assert b"xyzzy" in new.path.read_bytes() and b"xyzzy" not in before_page
        assert check_archive(arch) == []


# -- reading a read-only archive ------------------------------------------------------------


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


# -- terminal escapes ---------------------------------------------------------------------


ESCAPES = "\x1b]0;owned\x07\x1b[2J\u202e\x9b31m"


def test_nothing_stored_can_steer_the_terminal(data_dir: Path, tmp_path: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        run = arch.record(
            "e", params={f"k{ESCAPES}": ESCAPES}, backend="b", state=bell_state(),
            metadata={"note": ESCAPES},
        )  # fmt: skip
        pack_bundle(arch, tmp_path / "b.qexb", note=ESCAPES)
        arch.conn.execute("UPDATE runs SET experiment_name = ? ", (f"x{ESCAPES}",))
    outputs = [
        invoke(data_dir, "runs").output,
        invoke(data_dir, "show", run.run_id[:8]).output,
        invoke(data_dir, "check").output,
        invoke(data_dir, "inspect", str(tmp_path / "b.qexb")).output,
        invoke(data_dir, "show", f"{ESCAPES}").output,
    ]
    for output in outputs:
        assert not any(ch in output for ch in "\x1b\x07\x9b\u202e"), repr(output)
    assert "\\x1b]0;owned" in outputs[1]
    shown = json.loads(invoke(data_dir, "show", "--json", run.run_id[:8]).output)
    assert shown["params"] == {f"k{ESCAPES}": ESCAPES}  # --json stays exact


# -- bad arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["runs", "-p", f"shots={10**20}"],
        ["runs", "-n", str(10**20)],
        ["runs", "--offset", str(10**20)],
        ["runs", "-e", "\udcff"],
        ["runs", "-p", "\udcff=1"],
        ["runs", "-p", "a=\udcff"],
        ["show", "\udcff"],
        ["show", "\U0010ffff"],
        ["rm", "\udcff", "--yes"],
        ["runs", "-p", "a=" + "[" * 5000 + "]" * 5000],
        ["verify", "x.qexb", "--max-total-size", "inf"],
        ["verify", "x.qexb", "--max-total-size", "-1"],
    ],
)
def test_bad_arguments_are_one_line_errors(data_dir: Path, args: list[str]) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", params={"shots": 1}, backend="b", state=bell_state())
    result = invoke(data_dir, *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and result.exit_code in (0, 1, 2), result.output


def test_huge_integer_filters_compare_as_numbers(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", params={"n": 10**20}, backend="b", state=bell_state())
        assert len(arch.runs(where={"n": {">=": 10**19}})) == 1
        assert arch.runs(where={"n": {">": 10**21}}) == []


def test_deep_metadata_and_lying_npy_headers_are_refused(data_dir: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.eye(2) / 2)
    deep = "[" * 5000 + "]" * 5000
    one_line_error(
        invoke(data_dir, "record", str(tmp_path / "s.npy"), "-e", "x", "-b", "b", "-m", deep),
        "nested deeper",
    )
    header = "{'descr': '<c16', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    liar = tmp_path / "liar.npy"
    liar.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    one_line_error(
        invoke(data_dir, "record", str(liar), "-e", "x", "-b", "b"), "the header promises"
    )


# -- refused work leaves no trace ------------------------------------------------------------


def test_a_refused_unpack_or_import_leaves_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.qexb"
    junk.write_bytes(b"not a zip at all" * 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke(tmp_path / "unused", "unpack", str(junk), str(empty)).exit_code == 1
    assert list(empty.iterdir()) == []
    assert invoke(tmp_path / "unused", "unpack", str(junk), str(tmp_path / "new")).exit_code == 1
    assert not (tmp_path / "new").exists()
    assert invoke(tmp_path / "missing", "import", str(junk)).exit_code == 1
    assert not (tmp_path / "missing").exists()
    with qa.open_archive(tmp_path / "src") as arch:
        arch.record("e", backend="b", state=bell_state())
        pack_bundle(arch, tmp_path / "ok.qexb")
    assert invoke(tmp_path / "dry", "import", str(tmp_path / "ok.qexb"), "-n").exit_code == 0
    assert not (tmp_path / "dry").exists()
    assert invoke(tmp_path / "real", "import", str(tmp_path / "ok.qexb")).exit_code == 0
    assert not (tmp_path / "real" / ".staging").exists()


def test_hostile_attachments_are_refused_or_stored_inert(tmp_path: Path) -> None:
    from .bundle_tools import read_members

    with qa.open_archive(tmp_path / "src") as arch:
        run = arch.record(
            "e", backend="b", state=bell_state(), attach={"counts": {"0": 1}, "blob": b"x"}
        )
        pack_bundle(arch, tmp_path / "ok.qexb")
    members = read_members(tmp_path / "ok.qexb")

    def with_artifact(name: str, extension: str, media: str, content: bytes) -> Path:
        value = json.loads(members[DESCRIPTION])
        path = f"data/artifacts/{run.run_id}_{name}.{extension}"
        value["runs"][0]["artifacts"].append(
            {
                "name": name,
                "media_type": media,
                "path": path,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        )
        edited = {**members, path: content, DESCRIPTION: json.dumps(value).encode()}
        return write_zip(tmp_path / f"{name}.qexb", rebag(edited))

    disguised = with_artifact("page", "json", "text/html", b"<script>alert(1)</script>")
    with pytest.raises(qa.BundleError, match=r"QEX-B023.*not 'application/json'"):
        read_bundle(disguised)
    unknown = with_artifact("tool", "exe", "application/octet-stream", b"MZ")
    with pytest.raises(qa.BundleError, match=r"QEX-B023.*\.exe file"):
        read_bundle(unknown)
    not_qpy = with_artifact("circuit_qpy", "qpy", "application/x-qpy", b"not QPY at all")
    with qa.open_archive(tmp_path / "target") as target:
        import_bundle(target, not_qpy)  # stored inert: nothing reads it unless asked
        stored = target.get(run.run_id).artifacts
        assert any(a.name == "circuit_qpy" for a in stored)
        assert check_archive(target) == []
