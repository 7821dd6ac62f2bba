"""Secrets are never stored, shown or logged; transport failures are one line (issue 22,
classes 2 and 5)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import qex_archive as qa
from qex_archive.cli import cli

from ..conftest import bell_state, snapshot
from .servers import Failing, closed_port, files_at, serving

pytest.importorskip("fsspec")

TOKEN = "ghp_S3CR3TT0K3Nvalue"
SIGNATURE = "deadbeefSIGNATURE0123"


def run(data: Path | None, *args: str) -> Result:
    prefix = ["-d", str(data)] if data is not None else []
    return CliRunner().invoke(cli, [*prefix, *args])


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "Traceback" not in result.output
    return line


def stored_text(root: Path) -> str:
    """Everything qex keeps in an archive, as text: the database's dump and every file."""
    parts = []
    if (root / "qex.db").exists():
        conn = sqlite3.connect(root / "qex.db")
        parts.extend(conn.iterdump())
        conn.close()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


@pytest.mark.parametrize(
    "url",
    [
        f"https://alice:{TOKEN}@data.example.org/qex",
        f"https://{TOKEN}@data.example.org/qex",
        f"s3://AKIAEXAMPLE:{TOKEN}@lab/qex",
        f"https://data.example.org/qex?X-Amz-Signature={TOKEN}",
    ],
)
def test_remote_add_refuses_credentials_in_the_url_and_never_prints_them(
    tmp_path: Path, url: str
) -> None:
    qa.open_archive(tmp_path / "a").close()
    before = snapshot(tmp_path / "a")
    line = one_line_error(run(tmp_path / "a", "remote", "add", "lab", url))
    assert TOKEN not in line and "credential" in line.lower()
    assert "AWS_ACCESS_KEY_ID" in line or "~/.netrc" in line
    assert snapshot(tmp_path / "a") == before
    listed = run(tmp_path / "a", "remote", "list", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


@pytest.mark.parametrize(
    "option",
    [
        'client_kwargs={"aws_secret_access_key": "%s"}',
        'headers={"Authorization": "Bearer %s"}',
        'config_kwargs={"s3": {"nested": [{"x": 1}, {"session_token": "%s"}]}}',
        'headers={"X-Api": "Bearer %s"}',
        'client_kwargs={"endpoint_url": "https://bob:%s@minio.lab:9000"}',
        "endpoint_url=https://bob:%s@minio.lab:9000",
    ],
)
def test_secret_looking_options_are_refused_at_every_depth(tmp_path: Path, option: str) -> None:
    qa.open_archive(tmp_path / "a").close()
    before = snapshot(tmp_path / "a")
    result = run(
        tmp_path / "a", "remote", "add", "lab", "s3://lab/qex", "--storage-option", option % TOKEN
    )
    line = one_line_error(result)
    assert "looks like a secret" in line and TOKEN not in line
    assert snapshot(tmp_path / "a") == before


def test_innocent_nested_options_are_kept(tmp_path: Path) -> None:
    option = 'client_kwargs={"region_name": "eu-west-1", "verify": false}'
    added = run(tmp_path / "a", "remote", "add", "lab", "s3://lab/qex", "--storage-option", option)
    assert added.exit_code == 0, added.output
    (entry,) = json.loads(run(tmp_path / "a", "remote", "list", "--json").stdout)
    assert entry["storage_options"] == {
        "client_kwargs": {"region_name": "eu-west-1", "verify": False}
    }


def test_a_url_an_older_qex_stored_with_credentials_is_never_shown(tmp_path: Path) -> None:
    qa.open_archive(tmp_path / "a").close()
    conn = sqlite3.connect(tmp_path / "a" / "qex.db")
    (table,) = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%remote%'")
        if row[0] == "qex_remotes"
    ]
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    values = {
        "name": "old",
        "url": f"https://alice:{TOKEN}@host.example/qex",
        "storage_options": json.dumps({"headers": {"Authorization": TOKEN}}),
    }
    conn.execute(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES (?, ?, ?)", list(values.values())
    )
    conn.commit()
    conn.close()
    assert set(values) <= set(columns)
    for args in (["remote", "list"], ["remote", "list", "--json"]):
        shown = run(tmp_path / "a", *args)
        assert shown.exit_code == 0 and "host.example/qex" in shown.output
        assert TOKEN not in shown.output


def test_importing_a_pre_signed_url_keeps_no_signature(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    served = tmp_path / "served"
    served.mkdir()
    with qa.open_archive(tmp_path / "a") as arch:
        run_id = arch.record("e", backend="b", state=bell_state()).run_id
        qa.pack_bundle(arch, served / "e.qexb")
    with serving(files_at(served)) as base:
        url = f"{base}/e.qexb?X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature={SIGNATURE}"
        imported = run(tmp_path / "b", "import", url)
        assert imported.exit_code == 0, imported.output
        shown = run(tmp_path / "b", "show", run_id)
        assert shown.exit_code == 0 and "from e.qexb" in shown.output, shown.output
        for text in (imported.output, shown.output, stored_text(tmp_path / "b")):
            assert SIGNATURE not in text and "X-Amz" not in text
        with qa.open_archive(tmp_path / "b") as arch:
            (got,) = arch.runs()
            assert got.provenance is not None and got.provenance["source_name"] == "e.qexb"


def test_source_name_of_a_url_is_its_file_name() -> None:
    from qex_archive.bundle.description import source_name_of

    assert source_name_of(f"https://a:{TOKEN}@h/x/e.qexb?sig={TOKEN}#frag") == "e.qexb"
    assert source_name_of("s3://lab/shared/bell.qexb") == "bell.qexb"
    assert source_name_of("/tmp/a?b.qexb") == "a?b.qexb"  # a local name is a name


def test_every_command_that_takes_a_url_or_options_keeps_its_secrets(tmp_path: Path) -> None:
    """The secrets given (in URLs, in options) appear in no output of any command taking a
    URL or options, in no file of the archive and in no object of the remote."""
    pytest.importorskip("aiohttp")
    served = tmp_path / "served"
    served.mkdir()
    remote_dir = tmp_path / "remote"
    with qa.open_archive(tmp_path / "a") as arch:
        run_id = arch.record("e", backend="b", state=bell_state()).run_id
        qa.pack_bundle(arch, served / "e.qexb")
    secret_option = f'headers={{"Authorization": "Bearer {TOKEN}"}}'
    outputs: list[str] = []
    with serving(files_at(served)) as base, serving(Failing) as failing:
        credentialed = base.replace("http://", f"http://alice:{TOKEN}@")
        signed = f"{base}/e.qexb?X-Amz-Signature={SIGNATURE}"
        commands = [
            ["remote", "add", "web", f"{credentialed}/qex"],
            ["remote", "add", "web", f"{base}/qex?token={TOKEN}"],
            ["remote", "add", "dir", str(remote_dir), "--storage-option", secret_option],
            ["remote", "add", "dir", str(remote_dir)],
            ["remote", "add", "down", f"{failing}/qex"],
            ["remote", "list"],
            ["remote", "list", "--json"],
            ["push", "dir"],
            ["remote", "status", "dir"],
            ["remote", "status", "down"],
            ["pull", "down"],
            ["verify", f"{credentialed}/e.qexb"],
            ["verify", signed],
            ["verify", f"{failing.replace('http://', f'http://bob:{TOKEN}@')}/e.qexb"],
            ["verify", f"{failing}/e.qexb?X-Amz-Signature={SIGNATURE}"],
            ["inspect", f"{credentialed}/e.qexb"],
            ["inspect", signed, "--json"],
            ["verify", signed, "--max-total-size", "1K"],
            ["import", f"{credentialed}/e.qexb"],
            ["import", signed, "--storage-option", secret_option],
            ["pack", "-o", f"s3://AKIA:{TOKEN}@lab/x.qexb"],
            ["pack", "-o", f"{credentialed}/x.qexb"],
            ["show", run_id],
        ]
        for command in commands:
            result = run(tmp_path / "a", *command)
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                command,
                repr(result.exception),
            )
            outputs.append(result.output)
    for text in [*outputs, stored_text(tmp_path / "a"), stored_text(remote_dir)]:
        assert TOKEN not in text and SIGNATURE not in text


def test_unreachable_endpoint_is_one_line_for_status_pull_and_push(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
    added = run(
        tmp_path / "a", "remote", "add", "lab", "s3://lab/qex",
        "--storage-option", f"endpoint_url={endpoint}",
        "--storage-option", 'config_kwargs={"retries": {"max_attempts": 1}}',
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    before = snapshot(tmp_path / "a")
    for command in (["remote", "status", "lab"], ["pull", "lab"], ["push", "lab"]):
        line = one_line_error(run(tmp_path / "a", *command))
        assert "s3://lab/qex" in line and "Connect" in line, line
        assert snapshot(tmp_path / "a") == before


def test_http_500_is_one_line_naming_the_url_without_credentials(tmp_path: Path) -> None:
    pytest.importorskip("aiohttp")
    qa.open_archive(tmp_path / "a").close()
    with serving(Failing) as failing:
        assert run(tmp_path / "a", "remote", "add", "web", f"{failing}/qex").exit_code == 0
        for command in (["remote", "status", "web"], ["pull", "web"], ["push", "web"]):
            line = one_line_error(run(tmp_path / "a", *command))
            assert f"{failing}/qex" in line and "500" in line, line
        for bundle in (
            f"{failing.replace('http://', f'http://bob:{TOKEN}@')}/e.qexb",
            f"{failing}/e.qexb?X-Amz-Signature={SIGNATURE}",
        ):
            for command in ("verify", "inspect", "import"):
                line = one_line_error(run(tmp_path / "a", command, bundle))
                assert f"{failing}/e.qexb" in line and TOKEN not in line
                assert SIGNATURE not in line and "500" in line, line


def test_http_500_from_an_s3_endpoint_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    with qa.open_archive(tmp_path / "a") as arch:
        arch.record("e", backend="b", state=bell_state())
    with serving(Failing) as failing:
        added = run(
            tmp_path / "a", "remote", "add", "lab", "s3://lab/qex",
            "--storage-option", f"endpoint_url={failing}",
            "--storage-option", 'config_kwargs={"retries": {"max_attempts": 1}}',
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        for command in (["remote", "status", "lab"], ["pull", "lab"], ["push", "lab"]):
            line = one_line_error(run(tmp_path / "a", *command))
            assert "s3://lab/qex" in line, line


def test_a_remote_that_lists_but_fails_on_its_objects_is_no_traceback(tmp_path: Path) -> None:
    """The listing works, every index object and bundle answers 500: each is named with its
    cause and left out (exit status 1), never a traceback."""
    pytest.importorskip("aiohttp")
    import http.server
    import uuid

    from .test_hostile_index import a_run, an_index

    broken, good = str(uuid.uuid4()), str(uuid.uuid4())

    class Half(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/index"):
                links = "".join(f'<a href="{b}.json">{b}.json</a>' for b in (broken, good))
                body, status = f"<html><body>{links}</body></html>".encode(), 200
            elif self.path.endswith(f"{good}.json"):
                body, status = an_index(good, [a_run()]), 200
            else:
                body, status = b"internal error", 500
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    qa.open_archive(tmp_path / "a").close()
    with serving(Half) as base:
        assert run(tmp_path / "a", "remote", "add", "web", f"{base}/qex").exit_code == 0
        before = snapshot(tmp_path / "a")
        for command in (["remote", "status", "web"], ["pull", "web"]):
            result = run(tmp_path / "a", *command)
            assert result.exit_code == 1, result.output
            assert result.exception is None or isinstance(result.exception, SystemExit)
            assert (
                f"index/{broken}.json: cannot be read" in result.stderr and "500" in result.stderr
            )
        pulled = run(tmp_path / "a", "pull", "web")
        assert f"skipped bundles/{good}.qexb: cannot read {base}/qex/bundles/{good}.qexb" in (
            pulled.stderr
        )
        assert snapshot(tmp_path / "a") == before
