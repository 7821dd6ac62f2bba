"""Bundles at URLs, against a real S3 API (moto's server) and a plain HTTP server, both on
127.0.0.1, started and stopped here."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import qex_archive as qa
from qex_archive.cli import cli

from ..conftest import bell_state, snapshot

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")


def client(s3: dict[str, str]):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=s3["endpoint_url"], region_name="us-east-1")


def test_pack_to_and_import_from_s3(s3: dict[str, str], tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "a") as arch:
        for p in (0.0, 0.3):
            arch.record(
                "bell",
                params={"p": p},
                backend="b",
                state=(1 - p) * bell_state() + p / 4 * np.eye(4),
            )
        report = qa.pack_bundle(arch, "s3://lab/shared/bell.qexb", storage_options=s3)
    assert report.path == "s3://lab/shared/bell.qexb"
    keys = [o["Key"] for o in client(s3).list_objects_v2(Bucket="lab")["Contents"]]
    assert keys == ["shared/bell.qexb"]  # no temporary object left behind
    contents = qa.read_bundle("s3://lab/shared/bell.qexb", storage_options=s3)
    assert len(contents.runs) == 2 and contents.path == "s3://lab/shared/bell.qexb"
    with qa.open_archive(tmp_path / "b") as other:
        imported = qa.import_bundle(other, "s3://lab/shared/bell.qexb", storage_options=s3)
        assert len(imported.imported) == 2
        (run,) = other.runs(where={"p": 0.3})
        assert run.provenance is not None and run.provenance["source_name"] == "bell.qexb"


def test_the_commands_take_urls(s3: dict[str, str], tmp_path: Path) -> None:
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
    option = ["--storage-option", f"endpoint_url={s3['endpoint_url']}"]
    runner = CliRunner()
    url = "s3://lab/cli/e.qexb"
    packed = runner.invoke(cli, ["-d", str(tmp_path / "a"), "pack", "-o", url, *option])
    assert packed.exit_code == 0 and url in packed.output, packed.output
    verified = runner.invoke(cli, ["verify", url, *option])
    assert verified.exit_code == 0 and verified.output.startswith("valid:"), verified.output
    shown = runner.invoke(cli, ["inspect", url, *option])
    assert "runs" in shown.output and shown.exit_code == 0
    imported = runner.invoke(cli, ["-d", str(tmp_path / "b"), "import", url, *option])
    assert imported.exit_code == 0 and "imported 1 run from" in imported.output
    missing = runner.invoke(cli, ["verify", "s3://lab/nothing.qexb", *option])
    assert missing.exit_code == 1 and "no bundle at s3://lab/nothing.qexb" in missing.output
    assert "test-secret" not in missing.output


def test_a_bundle_tampered_in_the_bucket_is_refused_with_the_same_code(
    s3: dict[str, str], tmp_path: Path
) -> None:
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
        qa.pack_bundle(arch, tmp_path / "local.qexb")
    raw = bytearray((tmp_path / "local.qexb").read_bytes())
    at = raw.index(b"\x93NUMPY") + 200  # inside the density matrix's data
    raw[at] ^= 0xFF
    client(s3).put_object(Bucket="lab", Key="tampered.qexb", Body=bytes(raw))
    (tmp_path / "t.qexb").write_bytes(bytes(raw))
    with pytest.raises(qa.BundleError) as local_error:
        qa.read_bundle(tmp_path / "t.qexb")
    with qa.open_archive(tmp_path / "b") as target:
        before = snapshot(target.root)
        with pytest.raises(qa.BundleError) as remote_error:
            qa.import_bundle(target, "s3://lab/tampered.qexb", storage_options=s3)
        assert remote_error.value.code == local_error.value.code == "QEX-B012"
        assert snapshot(target.root) == before


def test_read_only_http(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
        qa.pack_bundle(arch, tmp_path / "served" / "e.qexb") if (
            tmp_path / "served"
        ).mkdir() is None else None
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served")
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined, method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/e.qexb"
        assert len(qa.read_bundle(url).runs) == 1
        with qa.open_archive(tmp_path / "b") as other:
            assert len(qa.import_bundle(other, url).imported) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_without_the_extra_a_url_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins
    import sys

    real_import = builtins.__import__

    def no_fsspec(name: str, *args: object, **kwargs: object) -> object:
        if name == "fsspec":
            raise ImportError("No module named 'fsspec'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_fsspec)
    monkeypatch.delitem(sys.modules, "fsspec", raising=False)
    result = CliRunner().invoke(cli, ["verify", "s3://lab/x.qexb"])
    assert result.exit_code == 1
    assert "pip install 'qex-archive[remote]'" in result.output


def test_push_pull_and_status_between_two_archives(s3: dict[str, str], tmp_path: Path) -> None:
    from qex_archive.remote.sync import add_remote, pull, push, status

    url = "s3://lab/remote-a"
    with qa.open_archive(tmp_path / "alice") as alice, qa.open_archive(tmp_path / "bob") as bob:
        for arch in (alice, bob):
            add_remote(arch, "lab", url, dict(s3))
        mine = [
            alice.record("ghz", params={"i": i}, backend="b", state=bell_state()) for i in range(3)
        ]
        alice.record("other", backend="b", state=np.eye(2) / 2)
        first = push(alice, "lab", qa.RunFilter(experiment="ghz"))
        assert first is not None and first["runs"] == 3
        assert push(alice, "lab", qa.RunFilter(experiment="ghz")) is None  # nothing new
        assert push(alice, "lab") is not None  # the other run, in a bundle of its own
        objects = sorted(
            o["Key"]
            for o in client(s3).list_objects_v2(Bucket="lab", Prefix="remote-a/")["Contents"]
        )
        assert len(objects) == 4 and sum(k.startswith("remote-a/index/") for k in objects) == 2
        bob.record("bobs", backend="b", state=np.eye(2) / 2)
        reports = pull(bob, "lab", qa.RunFilter(experiment="ghz"))
        assert len(reports) == 1 and sorted(reports[0].imported) == sorted(r.run_id for r in mine)
        assert pull(bob, "lab", qa.RunFilter(experiment="ghz")) == []  # nothing left to fetch
        seen = status(bob, "lab")
        assert len(seen.both) == 3 and len(seen.only_there) == 1 and len(seen.only_here) == 1
    with (
        pytest.raises(qa.InvalidInput, match="looks like a secret"),
        qa.open_archive(tmp_path / "carol") as carol,
    ):
        add_remote(carol, "lab", url, {"secret": "x"})


def test_two_pushers_at_once_both_land(s3: dict[str, str], tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, qex_archive as qa\n"
        "from qex_archive.remote.sync import add_remote, push\n"
        "with qa.open_archive(sys.argv[1]) as a:\n"
        "    add_remote(a, 'lab', 's3://lab/shared-c', {'endpoint_url': sys.argv[2]})\n"
        "    for i in range(5):\n"
        "        a.record('run', params={'i': i}, backend='b', state=np.eye(2) / 2)\n"
        "    print(push(a, 'lab')['runs'])\n"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / name), s3["endpoint_url"]],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    assert [child.communicate(timeout=120)[0].strip() for child in children] == ["5", "5"]
    with qa.open_archive(tmp_path / "three") as three:
        from qex_archive.remote.sync import add_remote, pull

        add_remote(three, "lab", "s3://lab/shared-c", dict(s3))
        assert sum(len(r.imported) for r in pull(three, "lab")) == 10


def test_a_pack_killed_during_upload_leaves_no_object_under_its_name(
    s3: dict[str, str], tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import textwrap

    from ..kill_points import PRELUDE

    child = PRELUDE + textwrap.dedent(
        """
        import sys, numpy as np, s3fs
        import qex_archive as qa
        s3fs.S3FileSystem.mv = stop_here  # uploaded under the temporary name, not yet moved
        with qa.open_archive(sys.argv[1]) as arch:
            arch.record("e", backend="b", state=np.eye(2) / 2)
            options = {"endpoint_url": sys.argv[2]}
            qa.pack_bundle(arch, "s3://lab/killed/x.qexb", storage_options=options)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child, str(tmp_path / "a"), s3["endpoint_url"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "REACHED", process.stderr.read()  # type: ignore[union-attr]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    listed = client(s3).list_objects_v2(Bucket="lab", Prefix="killed/").get("Contents", [])
    keys = [item["Key"] for item in listed]
    assert "killed/x.qexb" not in keys and all(".partial-" in key for key in keys)


@pytest.mark.slow
def test_pull_reads_thousands_of_indexes_and_fetches_only_what_it_needs(
    s3: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as json_module

    from qex_archive.remote.sync import add_remote, pull, push

    url = "s3://lab/many"
    s3_client = client(s3)
    for i in range(1000):  # other people's bundles, described by their index objects alone
        index = {
            "bundle_id": f"00000000-0000-5000-8000-{i:012d}",
            "bundle": f"bundles/00000000-0000-5000-8000-{i:012d}.qexb",
            "runs": [{"run_id": f"10000000-0000-4000-8000-{i:012d}", "experiment_name": "other",
                      "backend_name": "b", "timestamp": 1.7e9, "rho_sha256": "0" * 64}],
        }  # fmt: skip
        s3_client.put_object(
            Bucket="lab", Key=f"many/index/{index['bundle_id']}.json", Body=json_module.dumps(index)
        )
    with qa.open_archive(tmp_path / "alice") as alice, qa.open_archive(tmp_path / "bob") as bob:
        add_remote(alice, "lab", url, dict(s3))
        add_remote(bob, "lab", url, dict(s3))
        alice.record("ghz", backend="b", state=bell_state())
        assert push(alice, "lab", qa.RunFilter(experiment="ghz")) is not None
        fetched: list[str] = []
        from qex_archive import bundle

        original = bundle.import_bundle

        def counting(archive: qa.Archive, path: str, **kwargs: object) -> object:
            fetched.append(path)
            return original(archive, path, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(bundle, "import_bundle", counting)
        (report,) = pull(bob, "lab", qa.RunFilter(experiment="ghz"))
        assert len(fetched) == 1 and len(report.imported) == 1  # one bundle of 1,001 fetched


def test_a_connection_dropped_mid_read_is_refused_cleanly(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
        qa.pack_bundle(arch, tmp_path / "e.qexb")
    body = (tmp_path / "e.qexb").read_bytes()

    class Dropping(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then the connection is gone
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dropping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/e.qexb"
        with qa.open_archive(tmp_path / "b") as target:
            before = snapshot(target.root)
            with pytest.raises(qa.QexError) as caught:
                qa.import_bundle(target, url)
            assert "\n" not in str(caught.value)
            assert snapshot(target.root) == before
    finally:
        server.shutdown()
        server.server_close()


def test_inspect_reads_ranges_not_the_payload(
    s3: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import s3fs

    rng = np.random.default_rng(0)
    with qa.open_archive(tmp_path / "a", renderers=[]) as arch:
        for _ in range(6):  # 6 MiB of density matrices
            psi = rng.normal(size=256) + 1j * rng.normal(size=256)
            arch.record(
                "big", backend="b", state=np.outer(psi, psi.conj()) / np.vdot(psi, psi).real
            )
        qa.pack_bundle(arch, tmp_path / "big.qexb")
    size = (tmp_path / "big.qexb").stat().st_size
    client(s3).put_object(Bucket="lab", Key="big.qexb", Body=(tmp_path / "big.qexb").read_bytes())
    fetched: list[int] = []
    original = s3fs.core.S3File._fetch_range

    def counting(self, start: int, end: int) -> bytes:  # type: ignore[no-untyped-def]
        fetched.append(end - start)
        return original(self, start, end)  # type: ignore[no-any-return]

    monkeypatch.setattr(s3fs.core.S3File, "_fetch_range", counting)
    remote = qa.read_bundle("s3://lab/big.qexb", verify_payload=False, storage_options=s3)
    local = qa.read_bundle(tmp_path / "big.qexb", verify_payload=False)
    assert remote.description == local.description and remote.manifest == local.manifest
    assert sum(fetched) < size / 2, (sum(fetched), size)
    shown = CliRunner().invoke(
        cli,
        ["inspect", "s3://lab/big.qexb", "--storage-option", f"endpoint_url={s3['endpoint_url']}"],
    )
    assert shown.exit_code == 0 and "runs         6" in shown.output


def test_uploads_and_downloads_report_their_progress(s3: dict[str, str], tmp_path: Path) -> None:
    from qex_archive.remote.transfer import TRANSFER_PART, reporting

    events: list[tuple[str, int, int]] = []
    with qa.open_archive(tmp_path / "a") as arch:
        noise = np.random.default_rng(1).normal(size=(2048, 2048))  # ~64 MiB of payload
        arch.record("big", backend="b", state=noise @ noise.T / np.trace(noise @ noise.T))
        with reporting(lambda what, done, total: events.append((what, done, total))):
            qa.pack_bundle(arch, "s3://lab/progress/big.qexb", storage_options=s3)
    size = client(s3).head_object(Bucket="lab", Key="progress/big.qexb")["ContentLength"]
    uploads = [e for e in events if e[0] == "uploading"]
    assert len(uploads) == -(-size // TRANSFER_PART) > 1  # one report per part
    assert [d for _, d, _ in uploads] == sorted(d for _, d, _ in uploads)
    assert uploads[-1][1:] == (size, size)

    events.clear()
    with (
        qa.open_archive(tmp_path / "b") as other,
        reporting(lambda what, done, total: events.append((what, done, total))),
    ):
        qa.import_bundle(other, "s3://lab/progress/big.qexb", storage_options=s3)
    assert {e[0] for e in events} == {"downloading"}
    assert events[-1][1:] == (size, size)
    events.clear()
    with qa.open_archive(tmp_path / "c") as third:  # outside the block: nobody is told
        qa.import_bundle(third, "s3://lab/progress/big.qexb", storage_options=s3)
    assert events == []


def test_pull_brings_exactly_the_runs_its_filters_select(
    s3: dict[str, str], tmp_path: Path
) -> None:
    """pull honours every filter, -t, -p and -w too, not only those the index describes:
    `pull lab -t figure=2` imports the runs tagged figure=2, not the whole bundle."""
    from ..filter_tools import fill, listed

    alice_dir = tmp_path / "alice"
    with qa.open_archive(alice_dir) as alice:
        fill(alice)  # three experiments, tags, a non-physical state
    option = f"endpoint_url={s3['endpoint_url']}"
    runner = CliRunner()
    for who in ("alice", "bob", "carol"):
        qa.open_archive(tmp_path / who).close()
        added = runner.invoke(
            cli,
            ["-d", str(tmp_path / who), "remote", "add", "lab", "s3://lab/filtered",
             "--storage-option", option],
        )  # fmt: skip
        assert added.exit_code == 0, added.output
    pushed = runner.invoke(cli, ["-d", str(alice_dir), "push", "lab", "--json"])
    assert pushed.exit_code == 0 and json.loads(pushed.stdout)["runs"] == 8, pushed.output
    for filters in (["-t", "figure=2"], ["-e", "ghz", "-p", "shots=1024"], ["--invalid"]):
        bob = tmp_path / "bob"
        wanted = listed(alice_dir, *filters)
        pulled = runner.invoke(cli, ["-d", str(bob), "pull", "lab", *filters])
        assert pulled.exit_code == 0, pulled.output
        assert listed(bob, *filters) == wanted and 0 < len(wanted) < 8
        assert set(listed(bob)) <= set(listed(alice_dir))
    # what bob holds: exactly the union of what he asked for
    union = {
        *listed(alice_dir, "-t", "figure=2"),
        *listed(alice_dir, "-e", "ghz", "-p", "shots=1024"),
        *listed(alice_dir, "--invalid"),
    }
    assert listed(tmp_path / "bob") == sorted(union)
    pulled = runner.invoke(
        cli, ["-d", str(tmp_path / "carol"), "pull", "lab", "-w", "purity<0.9", "--json"]
    )
    assert pulled.exit_code == 0, pulled.output
    assert listed(tmp_path / "carol") == listed(alice_dir, "-w", "purity<0.9")


def test_push_sends_exactly_the_selected_runs(s3: dict[str, str], tmp_path: Path) -> None:
    from qex_archive.remote.sync import add_remote, push, remote_index

    from ..filter_tools import fill

    with qa.open_archive(tmp_path / "alice") as alice:
        fill(alice)
        add_remote(alice, "lab", "s3://lab/selected-push", dict(s3))
        selection = qa.RunFilter.build(tags={"figure": "2"}, valid=True)
        pushed = push(alice, "lab", selection)
        assert pushed is not None
        (index,) = remote_index("s3://lab/selected-push", dict(s3)).values()
        assert sorted(run["run_id"] for run in index["runs"]) == alice.run_ids(selection)


def test_a_failed_push_leaves_no_object_under_its_name_and_says_so_in_one_line(
    s3: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.exceptions
    import s3fs

    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
    data = ["-d", str(tmp_path / "a")]
    runner = CliRunner()
    added = runner.invoke(
        cli,
        [*data, "remote", "add", "lab", "s3://lab/failing",
         "--storage-option", f"endpoint_url={s3['endpoint_url']}"],
    )  # fmt: skip
    assert added.exit_code == 0, added.output

    def dropped(self: object, final: bool = False) -> bool:
        raise botocore.exceptions.ConnectionClosedError(endpoint_url=s3["endpoint_url"])

    monkeypatch.setattr(s3fs.core.S3File, "_upload_chunk", dropped)
    result = runner.invoke(cli, [*data, "push", "lab"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: cannot push to lab: cannot write s3://lab/failing/bundles/")
    assert "ConnectionClosedError" in line and "push again" in line
    listed = client(s3).list_objects_v2(Bucket="lab", Prefix="failing/").get("Contents", [])
    assert listed == []  # neither the bundle, its index nor a temporary object

    monkeypatch.undo()
    moved: list[str] = []
    original = s3fs.S3FileSystem.mv

    def refused(self: object, source: str, target: str, **kwargs: object) -> None:
        moved.append(target)
        if target.endswith(".json"):  # the index: the bundle is already in place
            raise PermissionError("Access Denied")
        original(self, source, target, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "mv", refused)
    result = runner.invoke(cli, [*data, "push", "lab"])
    (line,) = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and "cannot write s3://lab/failing/index/" in line
    assert "not listed" in line and "push again" in line
    keys = [
        o["Key"] for o in client(s3).list_objects_v2(Bucket="lab", Prefix="failing/")["Contents"]
    ]
    assert [key.split("/")[1] for key in keys] == ["bundles"]  # no index, no temporary object
    monkeypatch.undo()
    retried = runner.invoke(cli, [*data, "push", "lab"])
    assert retried.exit_code == 0 and "pushed 1 run to" in retried.output, retried.output


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_a_new_directory_remote_needs_no_folders_made_by_hand(tmp_path: Path, form: str) -> None:
    shared = tmp_path / "shared" / "lab"  # does not exist yet
    url = str(shared) if form == "path" else shared.as_uri()
    runner = CliRunner()
    alice = ["-d", str(tmp_path / "alice")]
    with qa.open_archive(tmp_path / "alice") as arch:
        tagged = arch.record("ghz", backend="b", state=bell_state())
        tagged.set_tag("figure", "2")
        arch.record("ghz", backend="b", state=bell_state())
    assert runner.invoke(cli, [*alice, "remote", "add", "lab", url]).exit_code == 0
    pushed = runner.invoke(cli, [*alice, "push", "lab"])
    assert pushed.exit_code == 0, pushed.output
    bob = ["-d", str(tmp_path / "bob")]
    assert runner.invoke(cli, [*bob, "remote", "add", "lab", url]).exit_code == 0
    pulled = runner.invoke(cli, [*bob, "pull", "lab", "-t", "figure=2"])
    assert pulled.exit_code == 0, pulled.output
    with qa.open_archive(tmp_path / "bob") as arch:
        assert [r.run_id for r in arch.runs()] == [tagged.run_id]
