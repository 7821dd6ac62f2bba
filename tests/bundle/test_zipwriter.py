"""The bundle ZIP writer: standard ZIP files, ZIP64 where needed, the same bytes every time."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.bundle import import_bundle, pack_bundle, read_bundle, writer, zipwriter
from qex_archive.bundle.format import DESCRIPTION, canonical_json
from qex_archive.bundle.zipwriter import ZipWriter, deflate

from ..conftest import bell_state

MEMBERS = {
    "bagit.txt": b"BagIt-Version: 1.0\n",
    "data/empty.json": b"",
    "data/page.html": b"<p>" + b"qubit " * 5000 + b"</p>",
    "data/results/x_rho.npy": bytes(range(256)) * 40,
}


def write_all(stream: io.BytesIO, *, streamed: bool) -> None:
    out = ZipWriter(stream)
    for name, data in MEMBERS.items():
        deflated = not name.endswith(".npy")
        if streamed:
            chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
            out.write_stream(name, chunks, size=len(data), deflated=deflated)
        else:
            body = deflate(data) if deflated else data
            out.write(name, body, size=len(data), crc=zlib.crc32(data), deflated=deflated)
    out.finish()


@pytest.mark.parametrize("streamed", [False, True])
def test_zipfile_reads_every_member_back(streamed: bool) -> None:
    stream = io.BytesIO()
    write_all(stream, streamed=streamed)
    with zipfile.ZipFile(stream) as bundle:
        assert bundle.testzip() is None
        assert [info.filename for info in bundle.infolist()] == list(MEMBERS)
        for info in bundle.infolist():
            assert bundle.read(info) == MEMBERS[info.filename]
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.create_system == 3
            assert info.external_attr >> 16 == 0o100644
            expected = zipfile.ZIP_STORED if info.filename.endswith(".npy") else 8
            assert info.compress_type == expected
    assert stream.getvalue().endswith(b"\x00\x00")  # no comment after the end record


def test_streamed_and_in_memory_members_give_the_same_bytes() -> None:
    one, two = io.BytesIO(), io.BytesIO()
    write_all(one, streamed=False)
    write_all(two, streamed=True)
    assert one.getvalue() == two.getvalue()


def test_a_stream_of_another_size_than_promised_is_refused() -> None:
    out = ZipWriter(io.BytesIO())
    with pytest.raises(ValueError, match="holds 3 bytes, 4 were expected"):
        out.write_stream("data/a.json", [b"abc"], size=4, deflated=True)


def test_zip64_fields_are_written_and_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zipwriter, "ZIP64_AT", 1)
    monkeypatch.setattr(zipwriter, "ZIP64_COUNT_AT", 1)
    stream = io.BytesIO()
    write_all(stream, streamed=True)
    raw = stream.getvalue()
    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw  # ZIP64 end record and locator
    with zipfile.ZipFile(stream) as bundle:
        assert bundle.testzip() is None
        assert {info.filename: bundle.read(info) for info in bundle.infolist()} == MEMBERS


@pytest.fixture
def archive_with_runs(tmp_path: Path) -> qa.Archive:
    arch = qa.open_archive(tmp_path / "source")
    arch.record("ghz", params={"n": 2}, backend="sim", state=bell_state())
    arch.record("ghz", params={"n": 1}, backend="sim", state=np.eye(2) / 2)
    return arch


def test_a_zip64_bundle_verifies_and_imports(
    archive_with_runs: qa.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zipwriter, "ZIP64_AT", 1)
    monkeypatch.setattr(zipwriter, "ZIP64_COUNT_AT", 1)
    pack_bundle(archive_with_runs, tmp_path / "z.qexb")
    assert read_bundle(tmp_path / "z.qexb").runs
    with qa.open_archive(tmp_path / "target") as target:
        report = import_bundle(target, tmp_path / "z.qexb")
        assert sorted(report.imported) == sorted(r.run_id for r in archive_with_runs.runs())
        assert [r.rho_path.read_bytes() for r in target.runs()] == [
            r.rho_path.read_bytes() for r in archive_with_runs.runs()
        ]


def test_streaming_every_file_gives_the_same_bundle(
    archive_with_runs: qa.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack_bundle(archive_with_runs, tmp_path / "memory.qexb")
    monkeypatch.setattr(writer, "IN_MEMORY_MEMBER", 0)
    pack_bundle(archive_with_runs, tmp_path / "streamed.qexb")
    assert (tmp_path / "memory.qexb").read_bytes() == (tmp_path / "streamed.qexb").read_bytes()


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_file_changed_or_gone_since_recording_stops_the_pack(
    archive_with_runs: qa.Archive,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_memory: bool,
) -> None:
    if not in_memory:
        monkeypatch.setattr(writer, "IN_MEMORY_MEMBER", 0)
    first = archive_with_runs.runs()[0]
    first.rho_path.write_bytes(first.rho_path.read_bytes()[:-1] + b"\x01")
    with pytest.raises(qa.ArchiveError, match="differs from its recorded checksum"):
        pack_bundle(archive_with_runs, tmp_path / "bad.qexb")
    first.rho_path.unlink()
    with pytest.raises(qa.ArchiveError, match="is missing from the archive"):
        pack_bundle(archive_with_runs, tmp_path / "bad.qexb")
    assert not list(tmp_path.glob("*.qexb*"))


def test_the_description_is_canonical_json(archive_with_runs: qa.Archive, tmp_path: Path) -> None:
    pack_bundle(archive_with_runs, tmp_path / "b.qexb", note="for Ada")
    with zipfile.ZipFile(tmp_path / "b.qexb") as bundle:
        raw = bundle.read(DESCRIPTION)
    assert canonical_json(json.loads(raw)) == raw
    assert json.loads(raw)["note"] == "for Ada"


@pytest.mark.skipif(not shutil.which("unzip"), reason="Info-ZIP unzip is not installed")
@pytest.mark.parametrize("zip64", [False, True])
def test_info_zip_unzip_accepts_the_bundle(
    archive_with_runs: qa.Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zip64: bool
) -> None:
    if zip64:
        monkeypatch.setattr(zipwriter, "ZIP64_AT", 1)
        monkeypatch.setattr(zipwriter, "ZIP64_COUNT_AT", 1)
    pack_bundle(archive_with_runs, tmp_path / "b.qexb")
    done = subprocess.run(
        ["unzip", "-tq", str(tmp_path / "b.qexb")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No errors detected" in done.stdout
