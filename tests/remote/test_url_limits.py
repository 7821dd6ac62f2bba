"""URLs and size limits (issue 22, class 6): --max-total-size refuses a bundle at a URL before
or while it is downloaded, never after; a server without range requests still serves it."""

from __future__ import annotations

import http.server
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli

from ..conftest import bell_state
from .servers import Quiet, files_at, serving

pytest.importorskip("fsspec")


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of about 17 MB (one 1024 x 1024 density matrix)."""
    directory = tmp_path_factory.mktemp("large")
    rng = np.random.default_rng(7)
    psi = rng.normal(size=1024) + 1j * rng.normal(size=1024)
    (directory / "served").mkdir()
    with qa.open_archive(directory / "a", renderers=[]) as arch:
        arch.record("big", backend="b", state=psi / np.linalg.norm(psi))
        qa.pack_bundle(arch, directory / "served" / "big.qexb")
    size = (directory / "served" / "big.qexb").stat().st_size
    assert size > 16 << 20
    return directory / "served"


def _put_and_watch(s3: dict[str, str], large: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import boto3
    import s3fs

    boto3.client("s3", endpoint_url=s3["endpoint_url"], region_name="us-east-1").put_object(
        Bucket="lab", Key="big.qexb", Body=(large / "big.qexb").read_bytes()
    )
    downloads: list[str] = []
    original = s3fs.S3FileSystem._get_file

    async def counting(self, rpath, lpath, **kwargs):  # type: ignore[no-untyped-def]
        downloads.append(rpath)
        return await original(self, rpath, lpath, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_get_file", counting)
    # fsspec keeps one file system per set of options, its sync methods bound when it was
    # made: a new one sees the counting method
    s3fs.S3FileSystem.clear_instance_cache()
    return downloads


@pytest.mark.parametrize(
    "command",
    ["verify", "import"],
)
def test_a_bundle_at_an_s3_url_over_the_limit_is_refused_before_downloading(
    s3: dict[str, str], large: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    downloads = _put_and_watch(s3, large, monkeypatch)
    option = ["--storage-option", f"endpoint_url={s3['endpoint_url']}"]
    runner = CliRunner()
    args = ["-d", str(large.parent / "b"), command, "s3://lab/big.qexb", *option]
    refused = runner.invoke(cli, [*args, "--max-total-size", "1M"])
    assert refused.exit_code == 1, refused.output
    assert "QEX-B008" in refused.output and "--max-total-size" in refused.output
    assert downloads == []
    accepted = runner.invoke(cli, args)
    assert accepted.exit_code == 0 and downloads == ["lab/big.qexb"], accepted.output


def test_verify_refuses_an_http_bundle_over_the_limit_before_downloading(large: Path) -> None:
    pytest.importorskip("aiohttp")
    with serving(files_at(large)) as base:
        for command in ("verify", "inspect"):
            refused = CliRunner().invoke(
                cli, [command, f"{base}/big.qexb", "--max-total-size", "1M"]
            )
            assert refused.exit_code == 1 and "QEX-B008" in refused.output, refused.output
        assert sum(Quiet.sent) < 1 << 20  # not the 17 MB bundle


class Unsized(http.server.BaseHTTPRequestHandler):
    """A server that says nothing of the length: a close-delimited body, no HEAD size."""

    body = b""
    protocol_version = "HTTP/1.0"

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        try:
            for at in range(0, len(self.body), 1 << 16):
                self.wfile.write(self.body[at : at + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


def test_a_bundle_of_unknown_size_is_refused_while_it_downloads(
    large: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiohttp")
    from qex_archive.bundle import Limits
    from qex_archive.remote import transfer

    Unsized.body = (large / "big.qexb").read_bytes()
    written: list[int] = []
    original = transfer._copy

    def watching(source, sink, what, total, limit=None):  # type: ignore[no-untyped-def]
        class Sink:
            def write(self, data: bytes) -> None:
                written.append(len(data))
                sink.write(data)

        return original(source, Sink(), what, total, limit)

    monkeypatch.setattr(transfer, "_copy", watching)
    with serving(Unsized) as base:
        with pytest.raises(qa.BundleError) as refused:
            qa.read_bundle(f"{base}/big.qexb", Limits(max_total_size=1 << 20))
        assert refused.value.code == "QEX-B008"
        assert sum(written) <= 1 << 20  # stopped at the limit, not after the whole bundle
        assert len(qa.read_bundle(f"{base}/big.qexb").runs) == 1  # and read whole without it


def test_a_server_without_range_requests_serves_a_large_bundle(large: Path, tmp_path: Path) -> None:
    """python -m http.server answers every GET with the whole file: a 17 MB bundle is read by
    one bounded, streamed GET (and inspect falls back to it)."""
    pytest.importorskip("aiohttp")
    with serving(files_at(large)) as base:
        url = f"{base}/big.qexb"
        runner = CliRunner()
        verified = runner.invoke(cli, ["verify", url])
        assert verified.exit_code == 0 and verified.output.startswith("valid:"), verified.output
        shown = runner.invoke(cli, ["inspect", url, "--json"])
        assert shown.exit_code == 0 and json.loads(shown.stdout)["runs"] == 1, shown.output
        imported = runner.invoke(cli, ["-d", str(tmp_path / "b"), "import", url])
        assert imported.exit_code == 0 and "imported 1 run" in imported.output, imported.output


def test_a_small_bundle_from_a_server_without_ranges_still_reads(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    (tmp_path / "served").mkdir()
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
        qa.pack_bundle(arch, tmp_path / "served" / "e.qexb")
    with serving(files_at(tmp_path / "served")) as base:
        assert len(qa.read_bundle(f"{base}/e.qexb", verify_payload=False).runs) == 1
