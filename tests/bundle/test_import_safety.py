"""Bundles that verify must import, and verify must refuse what import would fail on; an import
is all or nothing, and refused work (unpack, import, a dry run) leaves no trace."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle
from qex_archive.bundle.format import DESCRIPTION
from qex_archive.store.integrity import check_archive

from ..bundle_tools import read_members, rebag, write_zip
from ..cli_tools import invoke
from ..conftest import bell_state, snapshot


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
