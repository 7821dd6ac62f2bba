"""Attachments a bundle brings in: a disguised or unknown file type is refused, one qex cannot
read is stored inert.

(In tests/ rather than tests/bundle/ because the test imports ``.bundle_tools`` relative to
this folder.)"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle
from qex_archive.bundle.format import DESCRIPTION
from qex_archive.store.integrity import check_archive

from ..bundle_tools import rebag, write_zip
from ..conftest import bell_state


def test_hostile_attachments_are_refused_or_stored_inert(tmp_path: Path) -> None:
    from ..bundle_tools import read_members

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
