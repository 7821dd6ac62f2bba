"""Random damage to valid bundles, and imports killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qex_archive as qa
from qex_archive.bundle import BundleError, import_bundle, pack_bundle
from qex_archive.store.integrity import check_archive, collect_garbage

from ..bundle_tools import read_members, write_zip
from ..conftest import bell_state, snapshot
from ..kill_points import PRELUDE


@pytest.fixture(scope="module")
def bundle_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("fuzz")
    with qa.open_archive(root / "a") as arch:
        for i in range(3):
            arch.record(
                "e", params={"i": i}, backend="b", state=np.eye(2) / 2 if i else bell_state()
            )
        pack_bundle(arch, root / "v.qexb")
    return (root / "v.qexb").read_bytes()


def expected_rows(bundle_bytes: bytes, tmp_path: Path) -> dict[str, tuple[object, ...]]:
    path = tmp_path / "reference.qexb"
    path.write_bytes(bundle_bytes)
    with qa.open_archive(tmp_path / "reference") as arch:
        import_bundle(arch, path)
        return {r.run_id: (r.row(), r.rho_path.read_bytes()) for r in arch.runs()}


mutations = st.one_of(
    st.tuples(st.just("flip"), st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
    st.tuples(st.just("truncate"), st.integers(min_value=0), st.just(0)),
    st.tuples(st.just("member"), st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=mutations)
def test_damaged_bundles_import_identically_or_raise_a_bundle_error(
    bundle_bytes: bytes, tmp_path_factory: pytest.TempPathFactory, mutation: tuple[str, int, int]
) -> None:
    tmp_path = tmp_path_factory.mktemp("case")
    kind, position, value = mutation
    data = bytearray(bundle_bytes)
    path = tmp_path / "m.qexb"
    if kind == "flip":
        data[position % len(data)] ^= value
        path.write_bytes(bytes(data))
    elif kind == "truncate":
        path.write_bytes(bytes(data[: position % len(data)]))
    else:
        original = tmp_path / "o.qexb"
        original.write_bytes(bundle_bytes)
        members = read_members(original)
        name = sorted(members)[position % len(members)]
        content = bytearray(members[name]) or bytearray(b"\0")
        content[(position // 7) % len(content)] ^= value or 1
        write_zip(path, {**members, name: bytes(content)})
    with qa.open_archive(tmp_path / "target") as target:
        before = snapshot(target.root)
        try:
            import_bundle(target, path)
        except BundleError:
            assert snapshot(target.root) == before
            return
        got = {r.run_id: (r.row(), r.rho_path.read_bytes()) for r in target.runs()}
    assert got == expected_rows(bundle_bytes, tmp_path)


KILLER = PRELUDE + textwrap.dedent(
    """
    import os, sys, time
    import qex_archive as qa
    from qex_archive.store import files as storage
    from qex_archive.bundle import importer

    data_dir, bundle, point = sys.argv[1:4]

    if point == "while-staging":
        original = storage.StagingDirectory.create
        calls = {"n": 0}
        def create(self, name):
            calls["n"] += 1
            if calls["n"] == 3:  # two payload files staged, the third about to be
                stop_here()
            return original(self, name)
        storage.StagingDirectory.create = create
    elif point == "after-moving-files":
        importer._Merge._move_into_place = after(importer._Merge._move_into_place)
    elif point == "after-inserting-rows":
        importer._Merge._insert = after(importer._Merge._insert)
    arch = qa.open_archive(data_dir)
    importer.import_bundle(arch, bundle)
    print("FINISHED", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["while-staging", "after-moving-files", "after-inserting-rows"])
def test_a_killed_import_leaves_the_archive_as_it_was(
    bundle_bytes: bytes, tmp_path: Path, point: str
) -> None:
    bundle = tmp_path / "b.qexb"
    bundle.write_bytes(bundle_bytes)
    data_dir = tmp_path / "target"
    with qa.open_archive(data_dir) as arch:
        kept = arch.record("kept", backend="b", state=bell_state())
        before = snapshot(data_dir)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLER, str(data_dir), str(bundle), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == "REACHED", child.stderr.read() if child.stderr else ""
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with qa.open_archive(data_dir, create=False) as arch:
        findings = check_archive(arch)
        assert {f.code for f in findings} <= {"QEX-C005", "QEX-C006", "QEX-C012"}, findings
        assert findings, "the interrupted import should have left something for gc"
        collect_garbage(arch)
        assert check_archive(arch) == []
        assert snapshot(data_dir) == before
        assert [r.run_id for r in arch.runs()] == [kept.run_id]
        report = import_bundle(arch, bundle)
        assert len(report.imported) == 3 and check_archive(arch) == []
